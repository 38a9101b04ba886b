"""The HTTP contract of the recommendation service: request and response bodies (OpenAPI)."""

from __future__ import annotations

import math
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

ItemRef = Union[int, str]
"""An item id, or a title (exact, or with its year: "Star Wars (1977)"), or an id in digits;
`id:187` and `title:187` where digits are both an id and another item's title."""

DIGITS_TEXT = ("Digits in a string that are both an item id and another item's title (\"187\" "
               "in MovieLens-100K) are refused with both readings named: write \"id:187\" or "
               "\"title:187\" (a JSON number is always an id).")


class RecommendRequest(BaseModel):
    """A user's history and what to rank for them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"history": [49, "Star Wars (1977)", 180], "k": 5, "mode": "score"}]})

    history: list[ItemRef] = Field(
        ..., description="Items the user interacted with, oldest first: item ids or exact "
        "titles (case-insensitive). The model reads the most recent ones. " + DIGITS_TEXT)
    candidates: Optional[list[ItemRef]] = Field(
        None, description="The items to rank (2 to the service's max_candidates, no "
        "repeats). Default: `pin` plus the recommender's top items outside the history "
        "(num_candidates in all; uniform samples when the service's candidate_source is "
        "random). Items as in `history`.")
    pin: Optional[list[ItemRef]] = Field(
        None, description="Items that must be among the default candidates, as in "
        "`history`.")
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
                                   "serve.fusion; 0 is the LLM alone), or the recommender's "
                                   "own log-softmax where the checkpoint serves its ranking; "
                                   "a finite number, or null in generate mode.")
    source: Literal["given", "pinned", "retrieved", "sampled", "new"] = Field(
        ..., description="Where this candidate came from: the request's candidates, its pin, "
        "the recommender's retrieval, uniform sampling, or a new item near the history in "
        "content (added to retrieved lists: the recommender has no row for it).")
    recommender_rank: Optional[int] = Field(
        None, description="Retrieved items: 0-based rank in the recommender's own ranking "
        "of the catalogue, the history and the pinned items excluded.")

    @field_validator("score")
    @classmethod
    def _finite(cls, score: Optional[float]) -> Optional[float]:
        # JSON has no NaN or infinity: an answer holding one cannot be encoded, so it fails
        # here, saying what was wrong, never as the encoder's error. (serve.fusion is a finite
        # weight; a score like this comes from the model itself.)
        if score is not None and not math.isfinite(score):
            raise ValueError(f"the model scored a candidate {score}, not a finite number "
                             "(are the checkpoint's weights damaged?)")
        return score


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
                      "year (\"Star Wars (1977)\"); digits that name no title are an id. " +
                      DIGITS_TEXT)


class ResolveResponse(BaseModel):
    items: list[Item] = Field(..., description="The items named, in the order given.")


class NewItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(..., min_length=1, max_length=300, description="As prompts write it "
                       "and users name it; no other item may have it.")
    text: str = Field("", max_length=2000, description="Genres, tags, a year, a description: "
                      "what the item file's text column holds for the others.")


class AddItemsRequest(BaseModel):
    """New items, read by their content at once (the checkpoint was trained with
    cold.content=map)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"items": [{"title": "Star Wars: Episode I - The Phantom Menace (1999)",
                    "text": "Action Adventure Sci-Fi"}]}]})

    items: list[NewItemBody] = Field(..., min_length=1, max_length=1000)


class AddItemsResponse(BaseModel):
    items: list[Item] = Field(..., description="The new items with their ids, in the order "
                              "given.")
    catalogue: int = Field(..., description="Items in the catalogue now.")


class Health(BaseModel):
    status: Literal["ok"]
    model_version: str
    items: int


class ErrorBody(BaseModel):
    detail: str
    field: Optional[str] = None


ERRORS = {404: {"model": ErrorBody, "description": "No such item."},
          409: {"model": ErrorBody, "description": "The service takes no new items."},
          422: {"model": ErrorBody, "description": "The request names what is wrong."}}
