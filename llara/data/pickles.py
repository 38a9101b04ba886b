"""Reading the paper's released pandas pickles (`train_data.df`, `Val_data.df`, ...) without
running code from them: a restricted unpickler admits only the classes and functions that
rebuild a DataFrame of numbers, lists and strings; any other global is refused by name.

Three of the admitted callables are admitted only through checks: Arrow arrays (how pandas 3
pickles string columns and column names) must be string arrays whose buffers hold what their
length and offsets say, checked before anything reads them; Arrow buffers and bytearrays are
built only from bytes the pickle itself carries (never from a size, which would allocate it).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from llara.common.errors import DataError

ALLOWED_GLOBALS = {
    "pandas": {"DataFrame", "Series", "StringDtype", "Index", "RangeIndex"},
    "pandas.core.frame": {"DataFrame"},
    "pandas.core.series": {"Series"},
    "pandas.core.internals.managers": {"BlockManager", "SingleBlockManager"},
    "pandas.core.internals.blocks": {"new_block", "Block", "ObjectBlock", "NumericBlock",
                                     "NumpyBlock"},
    "pandas._libs.internals": {"_unpickle_block"},
    "pandas.core.indexes.base": {"_new_Index", "Index"},
    "pandas.core.indexes.range": {"RangeIndex"},
    "pandas.core.indexes.numeric": {"Int64Index"},
    "pandas.arrays": {"ArrowStringArray", "StringArray"},
    "pandas.core.arrays.string_": {"StringDtype", "StringArray"},
    "pandas.core.arrays.string_arrow": {"ArrowStringArray"},
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "builtins": {"slice"},
    "copyreg": {"_reconstructor"},
}
"""module -> names a DataFrame pickle of the released tables may name (pandas 1.x to 3.x,
numpy 1.x and 2.x): constructors of frames, blocks, indexes, arrays and dtypes only."""
STRING_ALIASES = {"string", "str", "utf8", "large_string", "large_str", "large_utf8"}
"""Arrow type aliases a pickled string column may name."""


class RefusedPickle(DataError):
    """A pickle named a global outside ALLOWED_GLOBALS, or fed a checked one what a table of
    samples never holds."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle, path: Path):
        super().__init__(handle)
        self.path = path
        self.checked = {("pyarrow.lib", "_restore_array"): self._arrow_array,
                        ("pyarrow.lib", "type_for_alias"): self._arrow_type,
                        ("pyarrow.lib", "py_buffer"): self._arrow_buffer,
                        ("builtins", "bytearray"): self._bytearray}

    def refuse(self, problem: str) -> RefusedPickle:
        return RefusedPickle(self.path, problem, expected="a pandas DataFrame of the released "
                             "tables")

    def find_class(self, module: str, name: str):
        if (module, name) in self.checked:
            return self.checked[module, name]
        if name in ALLOWED_GLOBALS.get(module, ()):
            return super().find_class(module, name)
        raise self.refuse(f"refers to {module}.{name}, which a table of samples never needs "
                          "(refused: unpickling it could run code)")

    def _arrow_type(self, alias):
        import pyarrow.lib

        if alias not in STRING_ALIASES:
            raise self.refuse(f"names the Arrow type {alias!r}; only string columns are "
                              "admitted as Arrow arrays")
        return pyarrow.lib.type_for_alias(alias)

    def _arrow_buffer(self, data):
        import pyarrow.lib

        if not isinstance(data, (bytes, bytearray)):
            raise self.refuse(f"builds an Arrow buffer from a {type(data).__name__}")
        return pyarrow.lib.py_buffer(data)

    def _bytearray(self, *args):
        if not args or not isinstance(args[0], (bytes, str)):
            raise self.refuse("builds a bytearray from a size or an object, not from bytes")
        return bytearray(*args)

    def _arrow_array(self, state):
        """pyarrow's own rebuild of an array, for string arrays only, validated in full
        (buffer sizes against length and offset, offsets against the data) before use: the
        rebuild itself trusts whatever sizes the pickle states."""
        import pyarrow as pa
        import pyarrow.lib

        if not (isinstance(state, tuple) and len(state) == 7):
            raise self.refuse("holds a malformed Arrow array")
        kind, children, dictionary = state[0], state[5], state[6]
        if not (isinstance(kind, pa.DataType) and
                (pa.types.is_string(kind) or pa.types.is_large_string(kind))):
            raise self.refuse(f"holds an Arrow array of type {kind}; only string columns are "
                              "admitted as Arrow arrays")
        if children or dictionary is not None:
            raise self.refuse("holds an Arrow string array with children or a dictionary")
        array = pyarrow.lib._restore_array(state)
        try:
            array.validate(full=True)
        except pa.ArrowException as err:
            raise self.refuse(f"holds an inconsistent Arrow array ({err})") from None
        return array


def read_frame_pickle(path: str | Path):
    """The DataFrame a released `.df` pickle holds, rebuilt by the restricted unpickler. Any
    failure, however deep in pandas or numpy, is a one-line DataError naming the file."""
    path = Path(path)
    try:
        import pandas  # noqa: F401 - the classes the pickle names live there
    except ImportError:
        raise DataError(path, "reading pickles needs pandas", expected="pip install pandas") \
            from None
    try:
        frame = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), path).load()
    except DataError:
        raise
    except (MemoryError, RecursionError) as err:
        raise DataError(path, f"not a readable pickle ({type(err).__name__})",
                        expected="a pandas DataFrame") from None
    except Exception as err:  # noqa: BLE001 - damaged or old pickles fail anywhere in pandas
        raise DataError(path, f"not a readable pickle ({type(err).__name__}: {err})",
                        expected="a pandas DataFrame") from None
    if not hasattr(frame, "to_dict") or not hasattr(frame, "columns"):
        raise DataError(path, f"holds a {type(frame).__name__}", expected="a pandas DataFrame")
    return frame


def frame_rows(path: str | Path) -> list[tuple[int, dict]]:
    """(line, row) pairs of a pickled DataFrame, lists and numpy values as Python ones; the
    line is the row's 1-based position."""
    frame = read_frame_pickle(path)
    try:
        records = frame.to_dict("records")
    except Exception as err:  # noqa: BLE001 - a frame rebuilt from inconsistent parts
        raise DataError(path, f"not a readable table ({type(err).__name__}: {err})",
                        expected="a pandas DataFrame") from None
    return [(number, {key: _plain(value) for key, value in record.items()})
            for number, record in enumerate(records, start=1)]


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
