import pytest

from llara.common.errors import DataError
from llara.model.llm import load_llm
from llara.prompts.templates import HISTORY_SLOT, TEMPLATES, load_templates, render_prompt
from llara.prompts.tokenize import tokenize_prompt

TEMPLATE = TEMPLATES["movies"][0]


def test_hybrid_and_text_rendering_golden():
    hybrid = render_prompt(TEMPLATE, ["Heat", "Toy Story"], ["Fargo", "Heat 2"], hybrid=True)
    assert hybrid == (
        "This user has watched Heat [HistoryEmb], Toy Story [HistoryEmb] in the previous. "
        "Please predict the next movie this user will watch. Choose the answer from the "
        "following 2 movie titles: Fargo [CansEmb], Heat 2 [CansEmb]. Answer:")
    text = render_prompt(TEMPLATE, ["Heat"], ["Fargo", "Heat 2"], hybrid=False)
    assert "Heat [PH] in the previous" in text and "Fargo [PH], Heat 2 [PH]. Answer:" in text


@pytest.fixture(scope="module")
def tokenizer():
    return load_llm("tiny", extra_text=["Heat Toy Story Fargo"])[1]


def test_label_mask_covers_exactly_the_answer(tokenizer):
    prompt = render_prompt(TEMPLATE, ["Heat", "Toy Story"], ["Fargo", "Heat 2"], True)
    tokens = tokenize_prompt(tokenizer, prompt, "Fargo", [5, 7, 1, 9], True, 512)
    answer = [t for t, m in zip(tokens.input_ids, tokens.label_mask) if m]
    assert tokenizer.decode(answer) == " Fargo\n"
    assert not any(tokens.label_mask[:len(tokens.input_ids) - len(answer)])
    slots = [tokens.input_ids[p] for p in tokens.slot_positions]
    assert tokenizer.convert_ids_to_tokens(slots) == [HISTORY_SLOT] * 2 + ["[CansEmb]"] * 2
    assert tokens.slot_items == [5, 7, 1, 9]
    text = tokenize_prompt(tokenizer, render_prompt(TEMPLATE, ["Heat"], ["Fargo"], False),
                           None, [5, 1], False, 512)
    assert text.slot_positions == [] and not any(text.label_mask)


def test_too_long_prompt_is_an_error_not_a_cut(tokenizer):
    prompt = render_prompt(TEMPLATE, ["Heat"] * 10, ["Fargo"] * 20, True)
    with pytest.raises(DataError, match="163 tokens exceed prompt.max_length"):
        tokenize_prompt(tokenizer, prompt, "Fargo", [1] * 30, True, 64)


def test_template_file_needs_both_fields(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("History: [HistoryHere]. Answer:\n")
    with pytest.raises(DataError, match=r"\[CansHere\]"):
        load_templates(path)
    path.write_text("H [HistoryHere] C [CansHere]\nX [HistoryHere] Y [CansHere]\n")
    assert len(load_templates(path)) == 2


@pytest.mark.parametrize("domain", sorted(TEMPLATES))
def test_every_built_in_template_states_the_actual_candidate_count(domain):
    for template in TEMPLATES[domain]:
        for count in (20, 5):
            text = render_prompt(template, ["Heat"], [f"Film {i}" for i in range(count)], True)
            assert f" {count} " in text and "[CountHere]" not in text
            assert " 20 " not in text or count == 20


def test_paper_wording_with_twenty_candidates():
    text = render_prompt(TEMPLATE, ["Heat"], ["Fargo"] * 20, hybrid=False)
    assert "Choose the answer from the following 20 movie titles: Fargo [PH]," in text


def test_custom_templates_may_state_the_count(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('["Seen [HistoryHere]. Pick one of [CountHere]: [CansHere]. Answer:"]')
    (template,) = load_templates(path)
    text = render_prompt(template, ["Heat"], ["Fargo", "Up", "Ran"], hybrid=False)
    assert text == "Seen Heat [PH]. Pick one of 3: Fargo [PH], Up [PH], Ran [PH]. Answer:"
