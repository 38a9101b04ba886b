"""Item titles as the paper's prompts show them."""

from __future__ import annotations

import re

_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.*), (?P<article>The|A|An)$")


def normalise_title(raw: str) -> str:
    """'Usual Suspects, The (1995)' -> 'The Usual Suspects' (year dropped, article moved)."""
    title = _YEAR.sub("", raw.strip()).strip()
    match = _TRAILING_ARTICLE.match(title)
    if match:
        title = f"{match['article']} {match['body']}"
    return title
