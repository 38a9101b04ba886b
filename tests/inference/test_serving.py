"""The service's library side: request checks that name the field, batched ranking equal to
one-by-one ranking, and checkpoint checks before start."""

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from llara.common.errors import ConfigError, DataError
from llara.config.serving import ServingConfig
from llara.data.tables import Samples
from llara.inference.requests import RequestError
from llara.inference.serving import Recommender, check_checkpoint, checkpoint_version
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.ranking import candidate_scores
from llara.recsys.retrieval import retrieve


@pytest.fixture
def checkpoint(served_checkpoint):
    return served_checkpoint


@pytest.fixture(scope="module")
def recommender(served_checkpoint):
    checkpoint = served_checkpoint
    return Recommender.load(ServingConfig(checkpoint=str(checkpoint), device="cpu",
                                          max_history=6, max_candidates=24),
                            log=lambda *_: None)


@pytest.mark.parametrize("request_args, field, words", [
    ({"history": []}, "history", "empty"),
    ({"history": list(range(7))}, "history", "at most 6"),
    ({"history": [2, 999]}, "history[1]", "unknown item id 999"),
    ({"history": [2, -1]}, "history[1]", "unknown item id -1"),
    ({"history": ["The Movie 3", "Movei 4"]}, "history[1]", "did you mean"),
    ({"history": [2, 2.5]}, "history[1]", "neither an item id nor a title"),
    ({"history": [2], "candidates": [3, 4, 3]}, "candidates", "more than once"),
    ({"history": [2], "candidates": [3]}, "candidates", "give 2 to 24"),
    ({"history": [2], "candidates": list(range(25))}, "candidates", "give 2 to 24"),
    ({"history": [2], "candidates": [3, 77]}, "candidates[1]", "unknown item id 77"),
    ({"history": [2], "pin": [5, 5]}, "pin", "more than once"),
    ({"history": [2], "pin": [5], "candidates": [3, 4]}, "pin", "not both"),
    ({"history": [2], "k": 0}, "k", "outside 1..20"),
    ({"history": [2], "k": 21}, "k", "outside 1..20"),
    ({"history": [2], "mode": "beam"}, "mode", "not one of score, generate"),
])
def test_bad_requests_name_the_field(recommender, request_args, field, words):
    with pytest.raises(RequestError, match=words) as caught:
        recommender.parse(**request_args)
    assert caught.value.field == field and caught.value.status == 422


def test_unknown_item_lookup_is_a_404(recommender):
    assert recommender.item_title(0) == recommender.titles[0]
    with pytest.raises(RequestError) as caught:
        recommender.item_title(40)
    assert caught.value.status == 404


def sampling(recommender) -> Recommender:
    """The same loaded model with the paper's random default candidates."""
    config = dataclasses.replace(recommender.config, candidate_source="random")
    return Recommender(recommender.trained, config, recommender.version)


def test_default_candidates_are_the_recommenders_top_n_for_that_history(recommender):
    history = [5, 6, 7]
    query = recommender.parse(history, k=3)
    sample = Samples.from_histories([history], [0], recommender.trained.dataset.config.max_history,
                                    recommender.num_items)
    top = retrieve(load_checkpoint(recommender.trained.config.rec_checkpoint).model, sample, 20)
    assert query.candidates == top.items[0].tolist()
    assert query.origins == ["retrieved"] * 20 and query.recommender_ranks == list(range(20))
    assert query.origin(query.candidates[4]) == ("retrieved", 4)
    # Pins come first; a pinned item the recommender would have retrieved is not repeated and
    # the list still holds num_candidates.
    pinned = recommender.parse(history, pin=[int(top.items[0][2]), 39])
    assert pinned.candidates[:2] == [top.items[0][2], 39] and len(pinned.candidates) == 20
    assert pinned.origins[:2] == ["pinned", "pinned"] and pinned.recommender_ranks[:2] == [None] * 2
    # Ranks count the items outside the history and the pins, as documented: 0, 1, 2, ...
    assert pinned.candidates[2:] == [i for i in top.items[0].tolist()
                                     if i not in (top.items[0][2], 39)][:18]
    assert pinned.recommender_ranks[2:] == list(range(18))
    # Given candidates are ranked as given, whatever the source.
    given = recommender.parse(history, candidates=[0, 3])
    assert given.candidates == [0, 3] and given.origins == ["given", "given"]


def test_items_older_than_the_models_window_are_still_never_recommended(recommender):
    width = recommender.trained.dataset.config.max_history
    history = list(range(1, width + 3))  # the oldest two fall out of the model's window
    long_history = Recommender(recommender.trained, dataclasses.replace(
        recommender.config, max_history=len(history)), recommender.version)
    candidates = long_history.parse(history).candidates
    assert len(candidates) == 20 and not set(candidates) & set(history)


def test_candidates_are_pinned_plus_sampled_and_repeatable(recommender):
    recommender = sampling(recommender)
    query = recommender.parse([5, 6, "the movie 8"], pin=[1, 2], k=3)
    assert query.origins == ["pinned"] * 2 + ["sampled"] * 18
    assert query.history == [5, 6, 7]
    assert query.candidates[:2] == [1, 2] and len(query.candidates) == 20
    assert len(set(query.candidates)) == 20 and not set(query.candidates[2:]) & {5, 6, 7}
    assert recommender.parse([5, 6, 7], pin=[1, 2]).candidates == query.candidates
    assert recommender.parse([5, 6, 7], pin=[1, 2], seed=3).candidates != query.candidates


def test_a_batch_ranks_exactly_as_one_request_at_a_time(recommender):
    queries = [recommender.parse([5, 6, 7], k=5), recommender.parse([9], k=20),
               recommender.parse([3, 4], candidates=[0, 10, 11], k=2),
               recommender.parse([12, 13, 14], candidates=[1, 0, 15])]
    together = recommender.rank(queries)
    alone = [recommender.rank([q])[0] for q in queries]
    assert [len(r) for r in together] == [5, 20, 2, 3]
    # Under bf16 weights (CPUs with native bf16) a batch and a single prompt run differently
    # shaped bf16 kernels, so their hidden states agree to about 1e-3 relative; the fp32 head
    # shows that (bf16 logits used to round it away). In fp32 they agree to 1e-5.
    bf16 = next(recommender.trained.model.llm.parameters()).dtype == torch.bfloat16
    for batched, single in zip(together, alone):
        assert [i for i, _ in batched] == [i for i, _ in single]
        assert [s for _, s in batched] == pytest.approx([s for _, s in single],
                                                        abs=2e-2 if bf16 else 1e-4)
        assert [s for _, s in batched] == sorted((s for _, s in batched), reverse=True)
    # The model learned that histories end on item 0 ("The Movie 1"): it ranks it first.
    assert together[3][0][0] == 0


def test_generate_names_a_candidate_or_none(recommender):
    answers = recommender.generate([recommender.parse([5, 6, 7], mode="generate"),
                                    recommender.parse([8], candidates=[0, 3], mode="generate")])
    for (text, item), candidates in zip(answers, ([None], [0, 3])):
        assert isinstance(text, str)
        assert item is None or candidates == [None] or item in candidates


def test_missing_or_corrupt_checkpoints_fail_before_start(checkpoint, tmp_path):
    check_checkpoint(checkpoint)
    with pytest.raises(DataError, match="no such checkpoint"):
        check_checkpoint(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    weights = broken / "projector.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])  # truncated
    with pytest.raises(DataError, match="projector.safetensors"):
        check_checkpoint(broken)
    (broken / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="run.json"):
        check_checkpoint(broken)
    assert checkpoint_version(checkpoint).startswith(checkpoint.name + "@")


def with_max_length(recommender, length: int) -> Recommender:
    """The same model under a shorter prompt.max_length, with a new service around it."""
    config = dataclasses.replace(recommender.trained.config,
                                 prompt=dataclasses.replace(recommender.trained.config.prompt,
                                                            max_length=length))
    trained = dataclasses.replace(recommender.trained, config=config)
    return Recommender(trained, dataclasses.replace(recommender.config, max_candidates=40),
                       recommender.version, log=lambda *_: None)


def test_every_request_the_service_admits_fits_the_model(recommender):
    """max_candidates is lowered at start-up to what the longest titles fit in
    prompt.max_length, so a long list is a 422 that says so, never a 500 in the batch."""
    short = with_max_length(recommender, 260)
    most = short.config.max_candidates
    assert 20 <= most < 40
    titles = recommender.titles
    longest = sorted(range(len(titles)), key=lambda i: -len(titles[i]))
    with pytest.raises(RequestError, match=f"give 2 to {most}"):
        short.parse([5, 6, 7], candidates=longest[:most + 1])
    query = short.parse(longest[most:most + 6], candidates=longest[:most])  # the worst case
    assert len(short.rank([query])[0]) == most
    with pytest.raises(ConfigError, match="serve.num_candidates"):
        with_max_length(recommender, 120)  # not even the default list fits


def test_a_prompt_is_measured_when_the_request_is_parsed(recommender):
    short = with_max_length(recommender, 260)
    short.trained.config.prompt.max_length = 40  # below what start-up planned for
    with pytest.raises(RequestError, match=r"prompt of \d+ tokens, above the model's limit "
                                           r"of 40 \(prompt.max_length\)") as caught:
        short.parse([5, 6, 7], candidates=[0, 1, 2, 3])
    assert caught.value.status == 422 and caught.value.field == "candidates"


def test_one_failing_request_fails_alone_in_its_batch(recommender):
    good = [recommender.parse([5, 6, 7], k=3), recommender.parse([9], candidates=[0, 1, 2])]
    broken = dataclasses.replace(good[1], candidates=[0, 1, recommender.num_items + 7])
    results = recommender.rank([good[0], broken, good[1]])
    assert isinstance(results[1], Exception) and not isinstance(results[0], Exception)
    assert [i for i, _ in results[0]] == [i for i, _ in recommender.rank([good[0]])[0]]
    assert [i for i, _ in results[2]] == [i for i, _ in recommender.rank([good[1]])[0]]


@pytest.mark.parametrize("source", ["recommender", "random"])
def test_a_history_covering_the_catalogue_is_a_clear_4xx(recommender, source):
    everything = Recommender(recommender.trained, dataclasses.replace(
        recommender.config, max_history=recommender.num_items, candidate_source=source),
        recommender.version, log=lambda *_: None)
    with pytest.raises(RequestError, match="fewer than 2 items outside it") as caught:
        everything.parse(list(range(recommender.num_items)))
    assert caught.value.status == 422
    # leaving one item: still too few to rank, said the same way
    with pytest.raises(RequestError, match="fewer than 2 items outside it"):
        everything.parse(list(range(1, recommender.num_items)))


def test_the_default_run_serves_its_head_with_the_stored_fusion(favourite_inputs, tmp_path):
    """The defaults (slot head, conditioned candidates, hybrid throughout), trained briefly,
    loaded by the service: scores are log-probabilities over the candidates, plus the stored
    fusion weight times the recommender's."""
    from llara.config.curriculum import CurriculumConfig
    from llara.config.prompt import PromptConfig
    from llara.config.scoring import ScoringConfig
    from llara.training.loop import train_local
    from tests.conftest import toy_config

    config = dataclasses.replace(toy_config(favourite_inputs, tmp_path / "run", epochs=1,
                                            max_train_samples=32),
                                 scoring=ScoringConfig(), curriculum=CurriculumConfig(),
                                 prompt=PromptConfig(min_history=2))
    assert (config.scoring.head, config.curriculum.schedule) == ("slot", "direct")
    checkpoint = train_local(config, progress=False, log=lambda *_: None).checkpoint_dir
    for fusion in ("off", "auto", "2", "recommender"):
        service = Recommender.load(ServingConfig(checkpoint=str(checkpoint), device="cpu",
                                                 fusion=fusion), log=lambda *_: None)
        assert service.trained.model.head is not None
        query = service.parse([5, 6, 7], candidates=[0, 3, 9, 12])
        (ranked,) = service.rank([query])
        scores = [score for _, score in ranked]
        assert scores == sorted(scores, reverse=True)
        if fusion == "off":  # the head's log-softmax alone: probabilities summing to 1
            assert sum(np.exp(scores)) == pytest.approx(1.0, abs=1e-4)
        weight = {"off": 0.0, "auto": service.trained.fusion_weight, "2": 2.0,
                  "recommender": float("inf")}[fusion]
        assert service.fusion_weight == weight
        if fusion == "recommender":  # the recommender's own log-softmax, in its order
            rec = candidate_scores(service.trained.recommender(), service._samples([query]),
                                   np.array([[0, 3, 9, 12]]))[0]
            assert [item for item, _ in ranked] == \
                [[0, 3, 9, 12][i] for i in np.argsort(-rec, kind="stable")]
            assert sum(np.exp(scores)) == pytest.approx(1.0, abs=1e-4)


@pytest.fixture(scope="module")
def slot_checkpoint(favourite_inputs, tmp_path_factory):
    """A briefly trained checkpoint of the defaults (slot head: head.safetensors beside the
    projector)."""
    from llara.config.curriculum import CurriculumConfig
    from llara.config.prompt import PromptConfig
    from llara.config.scoring import ScoringConfig
    from llara.training.loop import train_local
    from tests.conftest import toy_config

    config = dataclasses.replace(
        toy_config(favourite_inputs, tmp_path_factory.mktemp("slot") / "run",
                   max_train_samples=8),
        scoring=ScoringConfig(), curriculum=CurriculumConfig(), prompt=PromptConfig(min_history=2))
    return train_local(config, progress=False, log=lambda *_: None).checkpoint_dir


@pytest.mark.parametrize("damage", ["missing", "truncated", "other shape"])
def test_a_damaged_slot_head_is_a_one_line_error_everywhere(slot_checkpoint, tmp_path, damage):
    from safetensors.torch import save_file

    from llara.inference.batch import CheckpointEvaluator
    from llara.inference.trained import load_trained

    check_checkpoint(slot_checkpoint)
    broken = tmp_path / "broken"
    shutil.copytree(slot_checkpoint, broken)
    head = broken / "head.safetensors"
    if damage == "missing":
        head.unlink()
    elif damage == "truncated":
        head.write_bytes(head.read_bytes()[:60])
    else:  # readable, but not this model's head
        save_file({"score.weight": torch.zeros(1, 3), "score.bias": torch.zeros(1)}, str(head))
    if damage != "other shape":
        with pytest.raises(DataError, match="head.safetensors: cannot be read"):
            check_checkpoint(broken)
    with pytest.raises(DataError, match="head.safetensors: cannot be loaded") as caught:
        load_trained(broken, "cpu", log=lambda *_: None)
    assert "\n" not in str(caught.value)
    # Ray Data's evaluation actors report it as that error, from their first batch.
    evaluator = CheckpointEvaluator(str(broken), {"mode": "score"}, "cpu")
    assert isinstance(evaluator.error, DataError) and "head.safetensors" in str(evaluator.error)


def test_the_version_hashes_the_slot_head_too(slot_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    changed = tmp_path / "changed"
    shutil.copytree(slot_checkpoint, changed)
    state = load_file(str(changed / "head.safetensors"))
    save_file({k: v + 1 for k, v in state.items()}, str(changed / "head.safetensors"))
    assert checkpoint_version(changed).split("@")[1] != \
        checkpoint_version(slot_checkpoint).split("@")[1]
