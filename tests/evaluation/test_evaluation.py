import numpy as np
import pytest
import torch

from llara.data.tables import Samples
from llara.evaluation.generation import generate_answers, generation_metrics, parse_answer
from llara.evaluation.scoring import score_candidates
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import TEMPLATES
from tests.evaluation.reference import title_log_likelihood
from tests.model.test_llara import TITLES, make_model

TEMPLATE = TEMPLATES["movies"][0]


def test_parse_answer_follows_the_paper_rule():
    titles = ["Heat", "Fargo", "Toy Story"]
    assert parse_answer("fargo", titles) == 1  # case-insensitive
    assert parse_answer("I think Toy Story\nHeat", titles) == 2  # cut at the first newline
    assert parse_answer("Heat or Fargo", titles) is None  # two titles: invalid
    assert parse_answer("Casablanca", titles) is None


@pytest.mark.parametrize("answer, picked", [
    ("(B)", 1), (" (B) Fargo", 1), ("B)", 1), ("B) Fargo", 1), (" B", 1), ("B.", 1), ("c", None),
    (" A Bug's Life", 3),  # a title's first word, not label (A)
    (" I Shot Andy Warhol", 4), ("A Bug's Life (A)", 3), ("(A) A Bug's Life", 0),
    ("(Z)", None), (" Fargo", 1),
])
def test_letter_answers_are_labels_only_in_label_form(answer, picked):
    titles = ["Heat", "Fargo", "Toy Story", "A Bug's Life", "I Shot Andy Warhol"]
    assert parse_answer(answer, titles, letters=True) == picked


def test_generation_metrics_count_invalid_answers_as_misses():
    samples = Samples(np.arange(3), [None] * 3, np.zeros((3, 10), np.int64), np.ones(3, np.int64),
                      np.array([0, 1, 2]), np.zeros((3, 10), np.float32), np.zeros(3, np.float32))
    candidates = np.array([[0, 1], [2, 1], [3, 2]])
    titles = ["Heat", "Fargo", "Toy Story", "Alien"]
    metrics = generation_metrics(["Heat", "Toy Story", "Alien and Toy Story"], samples,
                                 candidates, titles)
    assert metrics["ValidRatio"] == pytest.approx(2 / 3)
    assert metrics["HitRatio@1"] == pytest.approx(1 / 3)


@pytest.fixture
def setup():
    model, _ = make_model()
    builder = PromptBuilder(model.tokenizer, TITLES, 1024)
    samples = Samples(np.arange(3), [None] * 3, np.array([[1, 2, 12], [3, 12, 12], [4, 5, 6]]),
                      np.array([2, 1, 3]), np.array([7, 8, 9]), np.zeros((3, 3), np.float32),
                      np.zeros(3, np.float32))
    candidates = np.array([[7, 0, 3], [8, 1, 2], [10, 11, 9]])
    return model, builder, samples, candidates


def test_shared_prefix_scores_equal_full_forward_passes(setup):
    model, builder, samples, candidates = setup
    # One batch of prompts of different lengths (left-padded inside), and one prompt a batch.
    ranking = score_candidates(model, builder, samples, candidates, TEMPLATE, batch_size=3)
    single = score_candidates(model, builder, samples, candidates, TEMPLATE, batch_size=1)
    assert np.allclose(ranking.scores, single.scores, atol=1e-4)
    for row, k in ((0, 0), (0, 1), (0, 2), (1, 1), (2, 2)):
        expected = title_log_likelihood(model, builder, samples, candidates, TEMPLATE, row, k,
                                        TITLES[candidates[row, k]])
        assert ranking.scores[row, k] == pytest.approx(expected, abs=1e-4)
    order = np.argsort(-ranking.scores, axis=1, kind="stable")
    truth = np.argmax(candidates == samples.next[:, None], axis=1)
    assert np.array_equal(order[np.arange(3), ranking.ranks], truth)


def test_generation_returns_one_answer_per_sample(setup):
    model, builder, samples, candidates = setup
    answers = generate_answers(model, builder, samples, candidates, TEMPLATE, batch_size=2,
                               max_new_tokens=5)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)


def test_text_only_runs_are_scored_on_text_prompts_without_the_projector(setup):
    from llara.config.curriculum import CurriculumConfig
    from llara.training.curriculum import evaluates_hybrid

    model, builder, samples, candidates = setup
    text = score_candidates(model, builder, samples, candidates, TEMPLATE, hybrid=False)
    hybrid = score_candidates(model, builder, samples, candidates, TEMPLATE, hybrid=True)
    with torch.no_grad():
        for parameter in model.projector.parameters():
            parameter.add_(torch.randn_like(parameter))
    assert np.array_equal(text.scores, score_candidates(model, builder, samples, candidates,
                                                        TEMPLATE, hybrid=False).scores)
    assert not np.allclose(hybrid.scores, score_candidates(model, builder, samples, candidates,
                                                           TEMPLATE, hybrid=True).scores)
    answers = generate_answers(model, builder, samples, candidates, TEMPLATE, batch_size=2,
                               max_new_tokens=3, hybrid=False)
    assert len(answers) == 3
    assert not evaluates_hybrid(CurriculumConfig("text_only"))
    assert all(evaluates_hybrid(CurriculumConfig(s)) for s in ("linear", "direct", "two_stage"))
