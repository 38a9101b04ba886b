"""Reading the paper's released pandas pickles (`train_data.df`, `Val_data.df`, ...) without
running code from them: a restricted unpickler admits only the classes and functions that
rebuild a DataFrame of numbers, lists and strings; any other global is refused by name."""

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
    "pyarrow.lib": {"_restore_array", "type_for_alias", "py_buffer"},
    "builtins": {"slice", "bytearray"},
    "copyreg": {"_reconstructor"},
}
"""module -> names a DataFrame pickle of the released tables may name (pandas 1.x to 3.x,
numpy 1.x and 2.x): constructors of frames, blocks, indexes, arrays and dtypes only."""


class RefusedPickle(DataError):
    """A pickle named a global outside ALLOWED_GLOBALS."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle, path: Path):
        super().__init__(handle)
        self.path = path

    def find_class(self, module: str, name: str):
        if name in ALLOWED_GLOBALS.get(module, ()):
            return super().find_class(module, name)
        raise RefusedPickle(self.path, f"refers to {module}.{name}, which a table of samples "
                            "never needs (refused: unpickling it could run code)",
                            expected="a pandas DataFrame of the released tables")


def read_frame_pickle(path: str | Path):
    """The DataFrame a released `.df` pickle holds, rebuilt by the restricted unpickler."""
    path = Path(path)
    try:
        import pandas  # noqa: F401 - the classes the pickle names live there
    except ImportError:
        raise DataError(path, "reading pickles needs pandas", expected="pip install pandas") \
            from None
    try:
        frame = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), path).load()
    except RefusedPickle:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
            ValueError) as err:
        raise DataError(path, f"not a readable pickle ({type(err).__name__}: {err})",
                        expected="a pandas DataFrame") from None
    if not hasattr(frame, "to_dict") or not hasattr(frame, "columns"):
        raise DataError(path, f"holds a {type(frame).__name__}", expected="a pandas DataFrame")
    return frame


def frame_rows(path: str | Path) -> list[tuple[int, dict]]:
    """(line, row) pairs of a pickled DataFrame, lists and numpy values as Python ones; the
    line is the row's 1-based position."""
    frame = read_frame_pickle(path)
    rows = []
    for number, record in enumerate(frame.to_dict("records"), start=1):
        rows.append((number, {key: _plain(value) for key, value in record.items()}))
    return rows


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
