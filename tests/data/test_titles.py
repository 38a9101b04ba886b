import pytest

from llara.data.titles import normalise_title


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
