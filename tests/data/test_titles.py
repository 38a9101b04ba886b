import pytest

from llara.data.titles import item_facts, item_text, normalise_title


@pytest.mark.parametrize("raw, expected", [
    ("Usual Suspects, The (1995)", "The Usual Suspects"),
    ("Toy Story (1995)", "Toy Story"),
    ("Man Without a Face, The (1993)", "The Man Without a Face"),
    ("Clockwork Orange, A (1971)", "A Clockwork Orange"),
    ("Affair to Remember, An (1957)", "An Affair to Remember"),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
     "City of Lost Children, The (Cité des enfants perdus, La)"),
    ("Birdcage, The", "The Birdcage"),
    ("unknown", "unknown"),
])
def test_titles_drop_year_and_move_trailing_article(raw, expected):
    assert normalise_title(raw) == expected


@pytest.mark.parametrize("raw, extra", [
    ("Toy Story (1995)", "release_year: 1995; class: Animation Children's Comedy"),  # RecBole
    ("Toy Story (1995)", "01-Jan-1995; Animation, Children's, Comedy"),  # MovieLens-100K
    ("Toy Story", "release_year: 1995; class: Animation Children's Comedy"),
])
def test_the_year_and_genres_are_read_from_each_item_file(raw, extra):
    assert item_facts(raw, extra) == ("1995", ["Animation", "Children's", "Comedy"])
    assert item_text("Toy Story", raw, extra, "title") == "Toy Story"
    assert item_text("Toy Story", raw, extra, "year") == "Toy Story (1995)"
    assert item_text("Toy Story", raw, extra, "genres") == \
        "Toy Story (1995; Animation, Children's, Comedy)"


def test_items_without_facts_keep_their_title():
    assert item_facts("Radiohead", "") == (None, [])
    assert item_text("Radiohead", "Radiohead", "", "genres") == "Radiohead"
    assert item_facts("Heat", "Action, Crime") == (None, ["Action", "Crime"])  # MovieLens-1M
    assert item_text("Heat", "Heat", "Action, Crime", "genres") == "Heat (Action, Crime)"
