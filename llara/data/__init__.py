"""Raw logs -> canonical Parquet tables (items, train/val/test samples) and candidate lists."""

from llara.data.candidates import sample_rng, sample_candidates
from llara.data.fetch import (CACHE_ENV, WheelSource, DatasetSource, DATASETS, SOURCES, FetchError,
                              default_cache_dir, dataset_dir, fetch_dataset)
from llara.data.prepare import (FORMAT_VERSION, SPLITS, PrepareReport, prepare_dataset,
                                PreparedDataset)
from llara.data.readers import (ML100K_GENRES, TITLE_COLUMNS, RawDataset, MOVIELENS_LOG_COLUMNS,
                                read_movielens_100k, read_movielens_1m, read_recbole, READERS,
                                detect_format, read_raw)
from llara.data.reference import (REFERENCE_FILES, load_reference_split, rows_to_samples,
                                  MatchReport, match_reference_users)
from llara.data.sequences import (UserLog, build_user_logs, window_samples, training_samples,
                                  final_sample)
from llara.data.splits import split_users
from llara.data.tables import (ITEM_COLUMNS, SAMPLE_ROW_GROUP, SAMPLE_COLUMNS, Samples,
                               write_samples, read_samples, samples_from_table, validate_samples,
                               write_items, read_items)
from llara.data.titles import normalise_title

__all__ = [
    "sample_rng",
    "sample_candidates",
    "CACHE_ENV",
    "WheelSource",
    "DatasetSource",
    "DATASETS",
    "SOURCES",
    "FetchError",
    "default_cache_dir",
    "dataset_dir",
    "fetch_dataset",
    "FORMAT_VERSION",
    "SPLITS",
    "PrepareReport",
    "prepare_dataset",
    "PreparedDataset",
    "ML100K_GENRES",
    "TITLE_COLUMNS",
    "RawDataset",
    "MOVIELENS_LOG_COLUMNS",
    "read_movielens_100k",
    "read_movielens_1m",
    "read_recbole",
    "READERS",
    "detect_format",
    "read_raw",
    "REFERENCE_FILES",
    "load_reference_split",
    "rows_to_samples",
    "MatchReport",
    "match_reference_users",
    "UserLog",
    "build_user_logs",
    "window_samples",
    "training_samples",
    "final_sample",
    "split_users",
    "ITEM_COLUMNS",
    "SAMPLE_ROW_GROUP",
    "SAMPLE_COLUMNS",
    "Samples",
    "write_samples",
    "read_samples",
    "samples_from_table",
    "validate_samples",
    "write_items",
    "read_items",
    "normalise_title",
]
