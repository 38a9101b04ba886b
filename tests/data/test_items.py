"""One way to read what users type to name an item: exact title, title with its year, id;
duplicates named with their ids; close matches from an index built once."""

import pytest

from llara.data.items import MAX_COMPARED, ItemIndex, ItemLookupError
from llara.data.titles import normalise_title

RAW = ["Toy Story (1995)", "Usual Suspects, The (1995)", "Star Wars (1977)", "Chasing Amy (1997)",
       "Chasing Amy (1997)", "Hamlet (1996)", "Hamlet (1948)", "1984 (1984)",
       "City of Lost Children, The (1995)", "Heat (1995)", "Heat 2 (2001)"]
INDEX = ItemIndex.build([normalise_title(t) for t in RAW], RAW)


@pytest.mark.parametrize("reference, item", [
    ("Toy Story", 0), ("toy story ", 0), ("The Usual Suspects", 1), ("Usual Suspects, The", 1),
    ("Star Wars (1977)", 2), ("star wars (1977)", 2), ("The Usual Suspects (1995)", 1),
    ("Usual Suspects, The (1995)", 1), ("Hamlet (1948)", 6), ("Hamlet (1996)", 5),
    (9, 9), ("9", 9), ("\u0669", 9), ("1984", 7), ("Heat", 9), ("Heat 2", 10),
])
def test_titles_then_titles_with_their_year_then_ids(reference, item):
    assert INDEX.resolve(reference) == item


@pytest.mark.parametrize("reference, message", [
    ("Chasing Amy", r"'Chasing Amy' names 2 items \(ids 3, 4\); give one of the ids"),
    ("Chasing Amy (1997)", r"names 2 items \(ids 3, 4\)"),
    ("Hamlet", r"names 2 items \(ids 5, 6\)"),
    (11, "unknown item id 11; ids run from 0 to 10"), ("-1", "unknown item title '-1'"),
    ("Toy Stroy", r"unknown item title 'Toy Stroy'; did you mean \['Toy Story'\]"),
    ("Star Wars (1978)", "did you mean"), (True, "neither an item id nor a title"),
    ("x" * 301, "a title of 301 characters names no item"),
    # digits to str.isdigit() that int() cannot read (the service's fuzzing found "\x85²")
    ("\u00b2", "unknown item title '\u00b2'"), ("\x85\u00b2", "unknown item title"),
])
def test_what_names_no_item_or_several_is_an_error_that_says_so(reference, message):
    with pytest.raises(ItemLookupError, match=message):
        INDEX.resolve(reference)


def test_typed_lists_split_on_commas_keep_titles_that_hold_commas():
    assert INDEX.parse("Toy Story, City of Lost Children, The (1995), heat, 3") == [0, 8, 9, 3]
    assert INDEX.parse("Star Wars (1977), 2, Usual Suspects, The (1995)") == [2, 2, 1]
    assert INDEX.parse('["Star Wars (1977)", 7, "Usual Suspects, The"]') == [2, 7, 1]
    assert INDEX.parse("Toy Story,") == [0]
    with pytest.raises(ItemLookupError, match="names 2 items"):
        INDEX.parse("Toy Story, Chasing Amy")
    with pytest.raises(ItemLookupError, match="unknown item title 'Toy Stroy'"):
        INDEX.parse("Heat, Toy Stroy")
    with pytest.raises(ItemLookupError, match="not a JSON list"):
        INDEX.parse("[1, 2")
    # found by bench/robustness.py: a 500 from POST /v1/items/resolve (RecursionError)
    with pytest.raises(ItemLookupError, match="nested too deeply"):
        INDEX.parse("[" * 5000 + "]" * 5000)
    with pytest.raises(ItemLookupError, match="a JSON list is neither an item id nor a title"):
        INDEX.parse("[" * 200 + "]" * 200)


def test_close_matches_compare_a_bounded_number_of_titles_in_a_huge_catalogue(monkeypatch):
    """2x10^5 titles sharing common words: an unknown title is compared with at most
    MAX_COMPARED of them, found through its rarer words."""
    import llara.data.items as items

    index = ItemIndex.build([f"The Movie of Night {i}" for i in range(200_000)] +
                            ["The Quiet Zebra Affair"])
    compared, original = [], items.difflib.get_close_matches

    def counting(word, possibilities, n=3, cutoff=0.6):
        compared.append(len(possibilities))
        return original(word, possibilities, n, cutoff)

    monkeypatch.setattr(items.difflib, "get_close_matches", counting)
    with pytest.raises(ItemLookupError, match="The Quiet Zebra Affair"):
        index.resolve("The Quiet Zebra Afair")
    with pytest.raises(ItemLookupError, match="unknown item title"):
        index.resolve("The Movie of Night")  # only common words: nothing to compare
    assert compared == [1, 0] and max(compared) <= MAX_COMPARED


# MovieLens-100K's shape in small: a film titled "187" (item 329 there) in a catalogue that
# also has an item 187.
NUMBERED = ItemIndex.build(["Toy Story", "Heat", "Star Wars", "187", "Alien", "1984"],
                           ["Toy Story (1995)", "Heat (1995)", "Star Wars (1977)",
                            "187 (1997)", "Alien (1979)", "1984 (1984)"])


@pytest.mark.parametrize("reference", ["3", " 3 ", "187", "1984"])
def test_digits_that_are_only_one_thing_need_no_prefix(reference):
    # "3": an id, no title; "187" and "1984": titles, and no item has such an id
    assert NUMBERED.resolve(reference) == {"3": 3, " 3 ": 3, "187": 3, "1984": 5}[reference]


def test_digits_that_are_an_id_and_a_title_are_an_error_naming_both_readings():
    index = ItemIndex.build(["Toy Story", "Heat", "3", "Alien"])  # "3" is item 2's title
    message = (r"^'3' is item id 3 \(\"Alien\"\) and the title of item 2; write id:3 or "
               r"title:3$")
    with pytest.raises(ItemLookupError, match=message):
        index.resolve("3")
    with pytest.raises(ItemLookupError, match=message):
        index.parse("Heat, 3, 0")  # in a typed list: the part alone
    with pytest.raises(ItemLookupError, match=message):
        index.parse('["Heat", "3"]')  # a JSON string reads as text does
    # what each prefix means, and a JSON number is always an id
    assert index.parse("Heat, id:3, 0") == [1, 3, 0]
    assert index.parse("Heat, title:3, 0") == [1, 2, 0]
    assert index.parse('["id:3", "title:3", 3]') == [3, 2, 3]
    assert index.resolve("ID: 3") == 3 and index.resolve("Title:3") == 2


def test_prefixes_name_one_reading_or_fail_clearly():
    assert NUMBERED.parse("title:Heat, id:4, title:Star Wars (1977)") == [1, 4, 2]
    with pytest.raises(ItemLookupError, match=r"'id:Heat': id: takes an item id in digits"):
        NUMBERED.parse("id:Heat")
    with pytest.raises(ItemLookupError, match="unknown item id 99; ids run from 0 to 5"):
        NUMBERED.resolve("id:99")
    with pytest.raises(ItemLookupError, match="unknown item title '4'"):
        NUMBERED.resolve("title:4")  # never read as the id 4
    with pytest.raises(ItemLookupError, match="names 2 items"):
        INDEX.parse("title:Chasing Amy")  # a prefix does not choose among duplicates


def test_titles_that_begin_like_a_prefix_are_still_titles():
    from llara.data.items import ItemIndex, ItemLookupError

    index = ItemIndex.build(["ID: Invasion", "Title: Beta", "Heat", "187"])
    assert index.resolve("ID: Invasion") == 0 and index.resolve("title: beta") == 1
    assert index.parse("ID: Invasion, Title: Beta, Heat") == [0, 1, 2]
    assert index.resolve("id:3") == 3 and index.resolve("title:187") == 3
    with pytest.raises(ItemLookupError, match="id: takes an item id in digits"):
        index.resolve("id:Heat")
