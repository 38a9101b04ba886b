import pytest

from llara.common.errors import ConfigError
from llara.config.curriculum import SCHEDULES, CurriculumConfig
from llara.training.curriculum import hybrid_probability, use_hybrid

T = 100


def probabilities(schedule, **kw):
    config = CurriculumConfig(schedule=schedule, **kw)
    return [hybrid_probability(config, t, T) for t in range(T)]


@pytest.mark.parametrize("warmup", [0.0, 0.3])
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_is_monotone_and_bounded(schedule, warmup):
    p = probabilities(schedule, warmup=warmup)
    assert all(0.0 <= x <= 1.0 for x in p)
    assert all(a <= b for a, b in zip(p, p[1:]))


def test_schedule_shapes():
    assert probabilities("linear")[::25] == [0.0, 0.25, 0.5, 0.75]  # t/T, text first
    assert set(probabilities("direct")) == {1.0} and set(probabilities("text_only")) == {0.0}
    two = probabilities("two_stage", boundary=0.4)
    assert two[39] == 0.0 and two[40] == 1.0
    assert sorted(set(probabilities("step", steps=4))) == [0.0, 1 / 3, 2 / 3, 1.0]
    cosine = probabilities("cosine")
    assert cosine[0] == 0.0 and cosine[50] == pytest.approx(0.5)
    assert set(probabilities("mixed", hybrid_share=0.3)) == {0.3}
    assert set(probabilities("mixed", warmup=0.2)[20:]) == {0.5}
    with pytest.raises(ConfigError, match="curriculum.hybrid_share"):
        CurriculumConfig(schedule="mixed", hybrid_share=1.5)


def test_warmup_keeps_text_prompts_then_runs_the_schedule_over_the_rest():
    p = probabilities("linear", warmup=0.2)
    assert set(p[:20]) == {0.0} and p[20] == 0.0 and p[60] == pytest.approx(0.5)
    two = probabilities("two_stage", warmup=0.2, boundary=0.5)
    assert two[59] == 0.0 and two[61] == 1.0
    with pytest.raises(ConfigError, match="curriculum.warmup"):
        CurriculumConfig(warmup=1.0)


def test_draws_follow_the_probability_and_repeat_per_step():
    config = CurriculumConfig(schedule="linear", seed=3)
    draws = [use_hybrid(config, t, 2000) for t in range(2000)]
    assert draws == [use_hybrid(config, t, 2000) for t in range(2000)]
    assert 0.05 < sum(draws[:1000]) / 1000 < 0.45 < 0.55 < sum(draws[1000:]) / 1000 < 0.95


def test_bad_schedule_names_the_option():
    with pytest.raises(ConfigError, match="curriculum.schedule"):
        CurriculumConfig(schedule="reverse")
