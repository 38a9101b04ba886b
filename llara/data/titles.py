"""Item titles as the paper's prompts show them."""

from __future__ import annotations

import re

ITEM_TEXTS = ("title", "year", "genres")
"""What a prompt writes for an item (prompt.item_text): its title; the title and the release
year; the title, the year and the genres (where the item file has them)."""
_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
_ANY_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.*), (?P<article>The|A|An)$")


def normalise_title(raw: str) -> str:
    """'Usual Suspects, The (1995)' -> 'The Usual Suspects' (year dropped, article moved)."""
    title = _YEAR.sub("", raw.strip()).strip()
    match = _TRAILING_ARTICLE.match(title)
    if match:
        title = f"{match['article']} {match['body']}"
    return title


def item_facts(raw_title: str, extra: str) -> tuple[str | None, list[str]]:
    """(release year, genres) of an item, from its raw title (`Toy Story (1995)`) and the
    extra text `llara data prepare` kept: RecBole's `release_year: 1995; class: Animation
    Comedy`, MovieLens-100K's `01-Jan-1995; Animation, Comedy` or MovieLens-1M's
    `Animation, Comedy`. Missing facts are None / []."""
    year_match = re.search(r"\((\d{4})\)\s*$", raw_title.strip())
    year = year_match.group(1) if year_match else None
    genres: list[str] = []
    for part in (p.strip() for p in extra.split(";") if p.strip()):
        key, _, value = part.partition(":") if ":" in part else ("", "", part)
        key, value = key.strip().lower(), value.strip()
        if key in ("release_year", "year") or (not key and re.fullmatch(
                r"[\d\w-]*\d{4}", value)):
            found = _ANY_YEAR.search(value)
            year = year or (found.group(1) if found else None)
        elif key in ("class", "genre", "genres", "category", "categories", "main_category",
                     "tags"):
            # Tables list them with commas (or `|`); RecBole separates by spaces.
            genres += [g.strip() for g in value.split(",") if g.strip()] if "," in value \
                else value.split()
        elif not key:
            genres += [g.strip() for g in value.split(",") if g.strip()]
    return year, genres


def item_text(title: str, raw_title: str, extra: str, mode: str) -> str:
    """The item as a prompt writes it: `Toy Story`, `Toy Story (1995)` or
    `Toy Story (1995; Animation, Comedy)`."""
    if mode == "title":
        return title
    year, genres = item_facts(raw_title, extra)
    facts = [year] if year else []
    if mode == "genres" and genres:
        facts.append(", ".join(genres))
    return f"{title} ({'; '.join(facts)})" if facts else title
