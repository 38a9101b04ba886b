"""The HTTP contract of the recommendation service: request and response bodies (OpenAPI)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

ItemRef = Union[int, str]
"""An item id, or a title (exact, or with its year: "Star Wars (1977)"), or an id in digits."""


class RecommendRequest(BaseModel):
    """A user's history and what to rank for them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"history": [49, "Star Wars (1977)", 180], "k": 5, "mode": "score"}]})

    history: list[ItemRef] = Field(
        ..., description="Items the user interacted with, oldest first: item ids or exact "
        "titles (case-insensitive). The model reads the most recent ones.")
    candidates: Optional[list[ItemRef]] = Field(
        None, description="The items to rank (2 to the service's max_candidates, no "
        "repeats). Default: `pin` plus the recommender's top items outside the history "
        "(num_candidates in all; uniform samples when the service's candidate_source is "
        "random).")
    pin: Optional[list[ItemRef]] = Field(
        None, description="Items that must be among the default candidates.")
    k: Optional[int] = Field(None, ge=1, description="How many ranked items to return "
                             "(default: all candidates).")
    mode: Literal["score", "generate"] = Field(
        "score", description="score: rank every candidate by the checkpoint's head (title "
        "likelihood, letter or slot score), fused with the recommender's score "
        "(serve.fusion) (fast); generate: the paper's protocol, the model writes its pick.")
    seed: Optional[int] = Field(None, ge=0, le=2**32 - 1, description="Seeds sampled "
                                "candidates (candidate_source random; default: derived from "
                                "the history).")


class RankedItem(BaseModel):
    id: int
    title: str
    score: Optional[float] = Field(None, description="score mode: the LLM's log-softmax over "
                                   "the candidates plus w x the recommender's (w: "
                                   "serve.fusion; 0 is the LLM alone); null in generate mode.")
    source: Literal["given", "pinned", "retrieved", "sampled"] = Field(
        ..., description="Where this candidate came from: the request's candidates, its pin, "
        "the recommender's retrieval, or uniform sampling.")
    recommender_rank: Optional[int] = Field(
        None, description="Retrieved items: 0-based rank in the recommender's own ranking "
        "of the catalogue, the history and the pinned items excluded.")


class RecommendResponse(BaseModel):
    items: list[RankedItem] = Field(..., description="Best first. generate mode: the "
                                    "candidate the answer names (empty if it names none).")
    candidates: list[int] = Field(..., description="The candidate ids that were ranked.")
    mode: Literal["score", "generate"]
    answer: Optional[str] = Field(None, description="generate mode: the model's text.")
    model_version: str = Field(..., description="Checkpoint folder and weight hash.")


class Item(BaseModel):
    id: int
    title: str


class ResolveRequest(BaseModel):
    """A typed list of items, as `llara recommend` takes it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "Star Wars (1977), 180, Usual Suspects, The (1995)"}]})

    text: str = Field(..., max_length=20_000, description="Titles or ids separated by "
                      "commas (a title may hold commas: the longest match wins), or a JSON "
                      "list of them. A title is matched exactly (case aside), then with its "
                      "year (\"Star Wars (1977)\"); digits that name no title are an id.")


class ResolveResponse(BaseModel):
    items: list[Item] = Field(..., description="The items named, in the order given.")


class Health(BaseModel):
    status: Literal["ok"]
    model_version: str
    items: int


class ErrorBody(BaseModel):
    detail: str
    field: Optional[str] = None


ERRORS = {404: {"model": ErrorBody, "description": "No such item."},
          422: {"model": ErrorBody, "description": "The request names what is wrong."}}
