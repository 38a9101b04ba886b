"""What the service and `llara recommend` accept: item references, checked requests, and the
error that names the offending field (HTTP 4xx)."""

from __future__ import annotations

from dataclasses import dataclass, field

from llara.common.errors import LlaraError

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
