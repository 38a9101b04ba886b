"""Prompt templates and their rendering into hybrid or text-only text.

A hybrid prompt renders each history item as `<title> [HistoryEmb]` and each candidate as
`<title> [CansEmb]`; the text-only variant puts `[PH]` in those places. The model later
overwrites the input embedding at every slot token with the projected recommender embedding.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from llara.common.errors import ConfigError, DataError

PLACEHOLDER, HISTORY_SLOT = "[PH]", "[HistoryEmb]"
CANDIDATE_SLOT, ITEM_SLOT = "[CansEmb]", "[ItemEmb]"
SPECIAL_TOKENS = (PLACEHOLDER, HISTORY_SLOT, CANDIDATE_SLOT, ITEM_SLOT)
HISTORY_FIELD, CANDIDATE_FIELD = "[HistoryHere]", "[CansHere]"
COUNT_FIELD = "[CountHere]"
"""Optional in a template: replaced by the number of candidates in that prompt."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "movies": (
        "This user has watched [HistoryHere] in the previous. Please predict the next movie "
        "this user will watch. Choose the answer from the following [CountHere] movie "
        "titles: [CansHere]. Answer:",
        "A viewer's recent films, oldest first: [HistoryHere]. Which one of these "
        "[CountHere] movies will they watch next? [CansHere]. Answer:",
        "Watch history: [HistoryHere]. From the [CountHere] candidate movies [CansHere], "
        "pick the one this user is most likely to watch next. Answer:",
    ),
    "games": (
        "This user has played [HistoryHere] in the previous. Please predict the next game "
        "this user will play. Choose the answer from the following [CountHere] game titles: "
        "[CansHere]. Answer:",
        "A player's recent games, oldest first: [HistoryHere]. Which one of these "
        "[CountHere] games will they play next? [CansHere]. Answer:",
        "Play history: [HistoryHere]. From the [CountHere] candidate games [CansHere], pick "
        "the one this user is most likely to play next. Answer:",
    ),
    "music": (
        "This user has listened to [HistoryHere] in the previous. Please predict the next "
        "artist this user will listen to. Choose the answer from the following [CountHere] "
        "artists: [CansHere]. Answer:",
        "A listener's recent artists, oldest first: [HistoryHere]. Which one of these "
        "[CountHere] artists will they play next? [CansHere]. Answer:",
        "Listening history: [HistoryHere]. From the [CountHere] candidate artists "
        "[CansHere], pick the one this user is most likely to listen to next. Answer:",
    ),
}
ANSWER_END = "\n"
"""The answer is the true title followed by this terminator; generation is cut there."""


def load_templates(path: str | Path) -> tuple[str, ...]:
    """A JSON list of strings, or a text file with one template per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "template file not found")
    text = path.read_text(encoding="utf-8")
    try:
        templates = json.loads(text) if path.suffix == ".json" else \
            [line for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err.msg})") from None
    if not templates or not all(isinstance(t, str) for t in templates):
        raise DataError(path, "no templates", expected="a list of template strings")
    for number, template in enumerate(templates, start=1):
        for field in (HISTORY_FIELD, CANDIDATE_FIELD):
            if template.count(field) != 1:
                raise DataError(path, f"template {number} has {template.count(field)} x {field}",
                                line=number, expected=f"exactly one {HISTORY_FIELD} and one "
                                f"{CANDIDATE_FIELD}")
    return tuple(templates)


def templates_for(domain: str, path: str | Path | None = None) -> tuple[str, ...]:
    if path is not None:
        return load_templates(path)
    if domain not in TEMPLATES:
        raise ConfigError(f"invalid 'prompt.domain': '{domain}' is not one of "
                          f"{', '.join(TEMPLATES)}")
    return TEMPLATES[domain]


def render_prompt(template: str, history_titles: list[str], candidate_titles: list[str],
                  hybrid: bool) -> str:
    history_slot, candidate_slot = (HISTORY_SLOT, CANDIDATE_SLOT) if hybrid else \
        (PLACEHOLDER, PLACEHOLDER)
    history = ", ".join(f"{t} {history_slot}" for t in history_titles)
    candidates = ", ".join(f"{t} {candidate_slot}" for t in candidate_titles)
    return template.replace(HISTORY_FIELD, history).replace(CANDIDATE_FIELD, candidates) \
        .replace(COUNT_FIELD, str(len(candidate_titles)))


def pick_template(templates: tuple[str, ...], rng: random.Random) -> str:
    """One template per batch, as in the paper."""
    return templates[rng.randrange(len(templates))]
