import pytest

from llara.common.errors import DataError
from llara.inference.requests import resolve_items

TITLES = ["Heat", "City of Lost Children, The (Cité)", "Toy Story", "Heat 2"]


def test_titles_ids_and_commas_inside_titles():
    assert resolve_items("Toy Story, City of Lost Children, The (Cité), heat, 3",
                         TITLES) == [2, 1, 0, 3]


def test_unknown_title_suggests_close_matches():
    with pytest.raises(DataError, match="unknown item 'Toy Stroy'.*Toy Story"):
        resolve_items("Heat, Toy Stroy", TITLES)
