"""Hyperparameter search: spaces over run options, the trial ledger and results."""

from llara.tune.results import (STATUSES, TrialLedger, TrialRecord, trial_records, ranked,
                                results_table, write_results, best_run, write_best)
from llara.tune.space import (DISTRIBUTIONS, SEARCHABLE_SECTIONS, FIXED_PER_SEARCH, DEFAULT_SPACE,
                              Parameter, TuneSpec, with_values, parse_parameter, parse_space,
                              build_spec, load_spec, plain, SHARD_KEYS, shard_runs, trial_config)

__all__ = [
    "STATUSES",
    "TrialLedger",
    "TrialRecord",
    "trial_records",
    "ranked",
    "results_table",
    "write_results",
    "best_run",
    "write_best",
    "DISTRIBUTIONS",
    "SEARCHABLE_SECTIONS",
    "FIXED_PER_SEARCH",
    "DEFAULT_SPACE",
    "Parameter",
    "TuneSpec",
    "with_values",
    "parse_parameter",
    "parse_space",
    "build_spec",
    "load_spec",
    "plain",
    "SHARD_KEYS",
    "shard_runs",
    "trial_config",
]
