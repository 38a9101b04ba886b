"""The HTTP contract (serve/api.py) on its own: numbers in a request are finite or refused
(a 422 naming the field, from the app's handler of validation errors), an answer never holds
NaN or infinity (JSON has neither), and the schema says how to name an item unambiguously."""

import json

import pytest
from pydantic import ValidationError

from llara.serve.api import RankedItem, RecommendRequest, ResolveRequest


@pytest.mark.parametrize("body, field", [
    ('{"history": [1e400]}', "history"), ('{"history": [NaN]}', "history"),
    ('{"history": [1], "k": Infinity}', "k"), ('{"history": [1], "seed": NaN}', "seed"),
    ('{"history": [1], "candidates": [2, -Infinity]}', "candidates"),
])
def test_a_non_finite_number_in_a_request_is_refused_naming_its_field(body, field):
    # json.loads, as the web framework reads bodies, takes NaN, Infinity and 1e400 (inf)
    with pytest.raises(ValidationError) as caught:
        RecommendRequest.model_validate(json.loads(body))
    first = caught.value.errors()[0]
    assert first["loc"][0] == field and first["type"] == "finite_number"


@pytest.mark.parametrize("score", [float("nan"), float("inf"), float("-inf")])
def test_an_answer_never_holds_a_non_finite_score(score):
    with pytest.raises(ValidationError, match="the model scored a candidate .*, not a finite "
                       "number"):
        RankedItem(id=1, title="Heat", score=score, source="given")
    item = RankedItem(id=1, title="Heat", score=-0.5, source="given")
    assert json.loads(item.model_dump_json())["score"] == -0.5


def test_the_schema_says_how_to_name_digits_that_are_an_id_and_a_title():
    recommend = RecommendRequest.model_json_schema()["properties"]
    resolve = ResolveRequest.model_json_schema()["properties"]
    for text in (recommend["history"]["description"], resolve["text"]["description"]):
        assert "id:187" in text and "title:187" in text
