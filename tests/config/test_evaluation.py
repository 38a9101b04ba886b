"""EvalConfig: one evaluation's options, checked together, each refusal naming the option."""

import pytest

from llara.common.errors import ConfigError
from llara.config.evaluation import EvalConfig


def test_the_default_scores_the_test_rows_on_the_papers_lists_with_ray():
    config = EvalConfig()
    assert (config.split, config.mode, config.protocol, config.in_process) == \
        ("test", "score", "paper", False)
    assert EvalConfig(diagnostics=True).in_process and EvalConfig(local=True).in_process


@pytest.mark.parametrize("options, problem", [
    ({"split": "train"}, "'--split': 'train' is not one of val, test"),
    ({"mode": "rank"}, "'--mode': 'rank'"),
    ({"protocol": "full", "mode": "both"}, "'--mode': 'both' with --protocol full"),
    ({"retrieve": 20}, "'--retrieve': only the full protocol retrieves"),
    ({"protocol": "full", "retrieve": 1}, "'--retrieve': must be at least 2"),
    ({"diagnostics": True, "protocol": "full"}, "'--diagnostics'"),
    ({"max_samples": 0}, "'--max-samples'"),
    ({"actors": 0}, "'--actors'"),
])
def test_options_that_cannot_go_together_are_refused_by_name(options, problem):
    with pytest.raises(ConfigError, match=problem):
        EvalConfig(**options)
