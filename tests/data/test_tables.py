"""Reading the prepared tables: a missing, truncated or damaged Parquet file is one line that
names it, whichever command reads it."""

import struct
from pathlib import Path

import numpy as np
import pytest

from llara.common.errors import DataError
from llara.config.data import DataConfig
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.data.tables import read_sample_table, read_samples

DAMAGES = ("truncated", "random bytes", "damaged pages")


def damage_parquet(path: Path, how: str, seed: int = 0) -> None:
    """Damage a Parquet file in place: cut in half, overwritten with random bytes, or its
    pages overwritten while its header and footer stay intact (a reader gets past the
    footer and fails inside the data)."""
    data = path.read_bytes()
    rng = np.random.default_rng(seed)
    if how == "truncated":
        damaged = data[:len(data) // 2]
    elif how == "random bytes":
        damaged = rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
    elif how == "damaged pages":
        footer = struct.unpack("<I", data[-8:-4])[0] + 8  # metadata, its length, "PAR1"
        middle = len(data) - footer - 4
        damaged = data[:4] + rng.integers(0, 256, middle, dtype=np.uint8).tobytes() + \
            data[-footer:]
    else:
        raise ValueError(how)
    path.write_bytes(damaged)


@pytest.fixture
def prepared(toy_raw, tmp_path) -> Path:
    prepare_dataset(toy_raw, tmp_path / "data", DataConfig(num_candidates=10))
    return tmp_path / "data"


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_sample_table_is_one_line_naming_the_file(prepared, how):
    path = prepared / "train.parquet"
    damage_parquet(path, how)
    dataset = PreparedDataset.open(prepared)
    # read_samples: `llara rec train` and `llara train --local` read the training table so
    # (dataset.samples); read_sample_table: `llara data holdout`
    for read in (lambda: dataset.samples("train"), lambda: read_samples(path, 40),
                 lambda: read_sample_table(path)):
        with pytest.raises(DataError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"{path}: not a readable Parquet file (")
        assert "\n" not in message  # Arrow's own text may span lines; the user gets one


@pytest.mark.parametrize("how", ["truncated", "random bytes", "damaged pages"])
def test_a_sample_file_is_checked_page_by_page_before_a_remote_task_reads_it(prepared, how):
    """The Ray shard build reads train.parquet in tasks: it checks the file first, so a
    damaged one is one line naming it."""
    from llara.data.tables import check_sample_file

    rows = check_sample_file(prepared / "train.parquet")
    assert rows == len(PreparedDataset.open(prepared).samples("train"))
    damage_parquet(prepared / "train.parquet", how)
    with pytest.raises(DataError, match=r"train.parquet: not a readable Parquet file \("):
        check_sample_file(prepared / "train.parquet")
