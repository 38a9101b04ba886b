"""What the service and `llara recommend` accept: item references, checked requests, and the
error that names the offending field (HTTP 4xx)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from llara.common.errors import DataError, LlaraError

MODES = ("score", "generate")


class RequestError(LlaraError):
    """A request the service refuses (HTTP 4xx); `field` names the offending part."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field, self.status = field, status


@dataclass
class Query:
    """One checked request: item ids, the candidates to rank, how many to return."""

    history: list[int]
    candidates: list[int]
    k: int
    mode: str
    origins: list[str] = field(default_factory=list)
    """Per candidate: given (the caller's list), pinned, retrieved or sampled."""
    recommender_ranks: list[int | None] = field(default_factory=list)
    """Per candidate: its 0-based rank in the recommender's ranking of the items outside the
    history and the pins (retrieved ones only)."""

    def origin(self, item: int) -> tuple[str, int | None]:
        index = self.candidates.index(item)
        return self.origins[index], self.recommender_ranks[index]



def resolve_items(text: str, titles: list[str]) -> list[int]:
    """'Toy Story, Heat, 17' -> item ids; titles may themselves contain ', ' (longest match)."""
    by_title = {t.lower(): i for i, t in enumerate(titles)}
    parts = [p.strip() for p in text.split(",")]
    items, start = [], 0
    while start < len(parts):
        for stop in range(len(parts), start, -1):
            name = ", ".join(parts[start:stop]).lower()
            if name in by_title:
                items.append(by_title[name])
                start = stop
                break
        else:
            part = parts[start]
            if part.isdigit() and int(part) < len(titles):
                items.append(int(part))
                start += 1
                continue
            close = difflib.get_close_matches(part, titles, n=3)
            raise DataError("--history", f"unknown item '{part}'",
                            expected="a title or item id" + (f"; did you mean {close}?"
                                                              if close else ""))
    return items
