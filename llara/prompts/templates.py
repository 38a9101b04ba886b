"""Prompt templates and their rendering into hybrid or text-only text.

A hybrid prompt renders each history item as `<title> [HistoryEmb]` and each candidate as
`<title> [CansEmb]` (and, with prompt.user_token, the user's state as `[UserEmb]`); the
text-only variant puts `[PH]` in those places. The model later overwrites the input embedding
at every slot token with a projected recommender vector. With prompt.user_token off the
built-in templates read exactly as the paper's.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from llara.common.errors import ConfigError, DataError
from llara.config.data import DOMAIN_PATTERN, DataConfig
from llara.config.prompt import PromptConfig

PLACEHOLDER, HISTORY_SLOT = "[PH]", "[HistoryEmb]"
CANDIDATE_SLOT, ITEM_SLOT = "[CansEmb]", "[ItemEmb]"
USER_SLOT = "[UserEmb]"
"""The recommender's state of the user's sequence (prompt.user_token)."""
SPECIAL_TOKENS = (PLACEHOLDER, HISTORY_SLOT, CANDIDATE_SLOT, ITEM_SLOT, USER_SLOT)
HISTORY_FIELD, CANDIDATE_FIELD = "[HistoryHere]", "[CansHere]"
COUNT_FIELD = "[CountHere]"
"""Optional in a template: replaced by the number of candidates in that prompt."""
USER_FIELD = "[UserHere]"
"""Optional in a template: where the user state goes (prompt.user_token); empty without it,
and at the template's start when the template has no such field."""
USER_TEXT = " Their profile: {slot}."
"""What [UserHere] becomes with prompt.user_token (the slot token inside)."""
FIELDS = (HISTORY_FIELD, CANDIDATE_FIELD, USER_FIELD)
"""The fields that hold slot tokens, by the kind of slot each holds."""
SLOT_KINDS = {HISTORY_FIELD: "history", CANDIDATE_FIELD: "candidate", USER_FIELD: "user"}
LETTER_LABELS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
"""Candidate labels of the letter head, in list order; each must be one token (checked)."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "movies": (
        "This user has watched [HistoryHere] in the previous.[UserHere] Please predict the "
        "next movie this user will watch. Choose the answer from the following [CountHere] "
        "movie titles: [CansHere]. Answer:",
        "A viewer's recent films, oldest first: [HistoryHere].[UserHere] Which one of these "
        "[CountHere] movies will they watch next? [CansHere]. Answer:",
        "Watch history: [HistoryHere].[UserHere] From the [CountHere] candidate movies "
        "[CansHere], pick the one this user is most likely to watch next. Answer:",
    ),
    "games": (
        "This user has played [HistoryHere] in the previous.[UserHere] Please predict the "
        "next game this user will play. Choose the answer from the following [CountHere] game "
        "titles: [CansHere]. Answer:",
        "A player's recent games, oldest first: [HistoryHere].[UserHere] Which one of these "
        "[CountHere] games will they play next? [CansHere]. Answer:",
        "Play history: [HistoryHere].[UserHere] From the [CountHere] candidate games "
        "[CansHere], pick the one this user is most likely to play next. Answer:",
    ),
    "music": (
        "This user has listened to [HistoryHere] in the previous.[UserHere] Please predict "
        "the next artist this user will listen to. Choose the answer from the following "
        "[CountHere] artists: [CansHere]. Answer:",
        "A listener's recent artists, oldest first: [HistoryHere].[UserHere] Which one of these "
        "[CountHere] artists will they play next? [CansHere]. Answer:",
        "Listening history: [HistoryHere].[UserHere] From the [CountHere] candidate artists "
        "[CansHere], pick the one this user is most likely to listen to next. Answer:",
    ),
}
GENERIC_TEMPLATES = (
    "This user has chosen [HistoryHere] in the previous.[UserHere] Please predict which of "
    "the following [CountHere] {domain} this user will choose next: [CansHere]. Answer:",
    "A user's recent {domain}, oldest first: [HistoryHere].[UserHere] Which one of these "
    "[CountHere] {domain} will they choose next? [CansHere]. Answer:",
    "History: [HistoryHere].[UserHere] From the [CountHere] candidate {domain} [CansHere], "
    "pick the one this user is most likely to choose next. Answer:",
)
"""The templates of any other domain (data.domain: products, books...), its word filled in."""
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
        if template.count(USER_FIELD) > 1:
            raise DataError(path, f"template {number} has {template.count(USER_FIELD)} x "
                            f"{USER_FIELD}", line=number, expected=f"at most one {USER_FIELD}")
    return tuple(templates)


def run_templates(prompt: PromptConfig, data: DataConfig) -> tuple[str, ...]:
    """The templates a run uses: its template file, else its prompt.domain, else its
    dataset's domain (datasets prepared before domains were recorded: movies)."""
    return templates_for(prompt.domain or data.domain or "movies", prompt.template_file)


def templates_for(domain: str, path: str | Path | None = None) -> tuple[str, ...]:
    if path is not None:
        return load_templates(path)
    if domain in TEMPLATES:
        return TEMPLATES[domain]
    if DOMAIN_PATTERN.fullmatch(domain) is None:
        raise ConfigError(f"invalid 'prompt.domain': '{domain}' is neither one of "
                          f"{', '.join(TEMPLATES)} nor a plural noun in lower case (products)")
    return tuple(t.replace("{domain}", domain) for t in GENERIC_TEMPLATES)


def slot_layout(template: str, user_token: bool) -> list[str]:
    """The kinds of slot-holding fields in the order the template places them."""
    fields = [f for f in FIELDS if f in template and (f != USER_FIELD or user_token)]
    layout = sorted(fields, key=template.index)
    if user_token and USER_FIELD not in template:
        layout.insert(0, USER_FIELD)
    return [SLOT_KINDS[f] for f in layout]


def render_prompt(template: str, history_titles: list[str], candidate_titles: list[str],
                  hybrid: bool, user_token: bool = False, letters: bool = False) -> str:
    """Hybrid: `<title> [HistoryEmb]`, `<title> [CansEmb]` and (user_token) `[UserEmb]`;
    text-only: `[PH]` in each of those places, items joined by ", " as in the paper.
    `letters` labels candidates `(A) <title>`."""
    history_slot, candidate_slot, user_slot = (HISTORY_SLOT, CANDIDATE_SLOT, USER_SLOT) \
        if hybrid else (PLACEHOLDER, PLACEHOLDER, PLACEHOLDER)
    if letters and len(candidate_titles) > len(LETTER_LABELS):
        raise ConfigError(f"invalid 'scoring.head': letter labels run out at "
                          f"{len(LETTER_LABELS)} candidates, got {len(candidate_titles)}")
    history = ", ".join(f"{t} {history_slot}" for t in history_titles)
    labels = [f"({label}) " for label in LETTER_LABELS] if letters else [""] * len(
        candidate_titles)
    candidates = ", ".join(f"{label}{t} {candidate_slot}" for label, t in
                           zip(labels, candidate_titles))
    user = USER_TEXT.format(slot=user_slot) if user_token else ""
    if user_token and USER_FIELD not in template:
        template = user.strip() + " " + template
    return template.replace(HISTORY_FIELD, history).replace(CANDIDATE_FIELD, candidates) \
        .replace(USER_FIELD, user).replace(COUNT_FIELD, str(len(candidate_titles)))


def pick_template(templates: tuple[str, ...], rng: random.Random) -> str:
    """One template per batch, as in the paper."""
    return templates[rng.randrange(len(templates))]
