"""The content baseline: TF-IDF vectors of title words, extra text and decade, and the
cosine of a recency-weighted history profile with each candidate."""

import json

import numpy as np
import pytest

from llara.common.errors import DataError
from llara.evaluation.fusion import ranks_of
from llara.recsys.content import ContentIndex, content_scores, item_tokens

# id: (title, raw title, extra) as `llara data prepare` keeps MovieLens (RecBole files)
ITEMS = [
    ("Toy Story", "Toy Story (1995)", "release_year: 1995; class: Animation Children's Comedy"),
    ("Babe", "Babe (1995)", "release_year: 1995; class: Children's Comedy Drama"),
    ("Clerks", "Clerks (1994)", "release_year: 1994; class: Comedy"),
    ("Heat", "Heat (1995)", "release_year: 1995; class: Action Crime Thriller"),
    ("GoldenEye", "GoldenEye (1995)", "release_year: 1995; class: Action Adventure Thriller"),
    ("Die Hard", "Die Hard (1988)", "release_year: 1988; class: Action Thriller"),
    ("Aladdin", "Aladdin (1992)", "release_year: 1992; class: Animation Children's Comedy"),
    ("Casablanca", "Casablanca (1942)", "release_year: 1942; class: Drama Romance War"),
]
PAD = len(ITEMS)


def build(min_df: int = 2) -> ContentIndex:
    return ContentIndex.build(*map(list, zip(*ITEMS)), min_df=min_df)


def histories(rows: list[list[int]], width: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(N, width) right-padded with PAD, oldest first, and (N,) lengths."""
    out = np.full((len(rows), width), PAD, np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out, np.array([len(r) for r in rows], np.int64)


def test_item_tokens_keep_title_words_text_words_and_the_decade_apart():
    tokens = item_tokens("The Usual Suspects", "Usual Suspects, The (1995)",
                         "release_year: 1995; class: Crime Thriller")
    assert tokens == ["title:usual", "title:suspects", "text:crime", "text:thriller",
                      "decade:1990s"]
    # MovieLens-100K's own file: a release date and comma-separated genres; 1-char words go
    assert item_tokens("Toy Story 2", "Toy Story 2 (1999)", "01-Jan-1999; Animation, Sci-Fi") \
        == ["title:toy", "title:story", "text:animation", "text:sci-fi", "decade:1990s"]
    # no year in the raw title: the extra text's; none at all: no decade token
    assert item_tokens("Heat", "Heat", "release_year: 1987")[-1] == "decade:1980s"
    assert not any(t.startswith("decade:") for t in item_tokens("Heat", "Heat", "Drama"))


def test_items_sharing_genres_with_the_history_rank_above_items_sharing_none():
    index = build()
    hist, lengths = histories([[0, 2], [3, 5]])  # comedies; action thrillers
    candidates = np.array([[7, 4, 1, 6], [1, 7, 4, 2]])
    scores = content_scores(index, hist, lengths, candidates)
    assert scores.shape == (2, 4)
    # Aladdin and Babe (comedies) above GoldenEye (the decade only) above Casablanca (nothing)
    assert min(scores[0, 2], scores[0, 3]) > scores[0, 1] > scores[0, 0] == 0
    assert scores[1, 2] > scores[1, 0] and scores[1, 2] > scores[1, 3]  # GoldenEye first
    assert ranks_of(scores, candidates, np.array([6, 4])).tolist() == [0, 0]


def test_the_decade_token_links_items_of_one_decade():
    index = build()
    assert "decade:1990s" in index.vocabulary and "decade:1940s" not in index.vocabulary
    # Heat and GoldenEye share their genres but not Die Hard's decade (1980s, one item)
    hist, lengths = histories([[3]])
    scores = content_scores(index, hist, lengths, np.array([[5, 4]]))
    assert scores[0, 1] > scores[0, 0] > 0
    one = ContentIndex.build(["A", "B", "C"], ["A (1971)", "B (1975)", "C (1990)"],
                             ["", "", ""], min_df=1)
    scores = content_scores(one, np.array([[0, 3]]), np.array([1]), np.array([[2, 1]]))
    assert scores[0].tolist() == [0.0, pytest.approx(1.0)]  # the 1970s only


def test_min_df_drops_tokens_of_one_item():
    assert "title:casablanca" not in build(min_df=2).vocabulary
    assert "text:romance" not in build(min_df=2).vocabulary
    assert {"title:casablanca", "text:romance"} <= set(build(min_df=1).vocabulary)
    assert "text:comedy" in build(min_df=2).vocabulary
    # an item left without tokens has an empty vector and scores 0
    index = ContentIndex.build(["Zz Top", "Qq"], ["Zz Top", "Qq"], ["", ""], min_df=2)
    assert index.num_tokens == 0 and index.row(1)[0].size == 0
    assert content_scores(index, np.array([[0]]), np.array([1]), np.array([[1, 0]])).tolist() \
        == [[0.0, 0.0]]


def test_idf_is_smooth_and_rows_have_unit_norm():
    index = build()
    n = len(ITEMS)
    comedy = index.position["text:comedy"]  # 4 of 8 items
    assert index.idf[comedy] == pytest.approx(np.log((1 + n) / (1 + 4)) + 1)
    norms = [np.linalg.norm(index.row(i)[1]) for i in range(n)]
    assert norms == pytest.approx([1.0] * n, abs=1e-6)


def test_recency_decay_weighs_the_latest_item_most():
    index = build()
    hist, lengths = histories([[7, 3], [3, 7]])  # Casablanca then Heat; Heat then Casablanca
    candidates = np.array([[1, 4], [1, 4]])  # Babe (drama), GoldenEye (action)
    scores = content_scores(index, hist, lengths, candidates, decay=0.3)
    assert scores[0, 1] > scores[0, 0] and scores[1, 0] > scores[1, 1]
    even = content_scores(index, hist, lengths, candidates, decay=1.0)
    assert even[0] == pytest.approx(even[1])  # order does not matter without decay


def test_padding_after_the_length_is_ignored_and_empty_histories_score_zero():
    index = build()
    hist = np.array([[0, 2, PAD, PAD], [0, 2, 5, 3], [PAD, PAD, PAD, PAD]])
    scores = content_scores(index, hist, np.array([2, 2, 0]), np.array([[6, 4]] * 3))
    assert scores[0] == pytest.approx(scores[1]) and scores[2].tolist() == [0.0, 0.0]


def test_vectorize_of_a_known_item_equals_its_row_and_append_adds_rows():
    index = build()
    for item, fields in enumerate(ITEMS):
        indices, values = index.vectorize(*fields)
        assert np.array_equal(indices, index.row(item)[0])
        assert np.array_equal(values, index.row(item)[1])
    new = ("Toy Story 2", "Toy Story 2 (1999)", "release_year: 1999; class: Animation Comedy")
    grown = index.append(*map(list, zip(new)))
    assert len(grown) == len(index) + 1 and grown.vocabulary == index.vocabulary
    assert np.array_equal(grown.row(PAD)[1], index.vectorize(*new)[1])
    dense = grown.dense([0, PAD])
    assert dense.shape == (2, index.num_tokens) and dense.dtype == np.float32
    assert np.array_equal(dense[1][grown.row(PAD)[0]], grown.row(PAD)[1])
    assert np.count_nonzero(dense[1]) == len(grown.row(PAD)[0])


def test_json_round_trip_gives_identical_scores():
    rng = np.random.default_rng(0)
    index = build(min_df=1)
    text = index.to_json()
    assert json.loads(text)["vocabulary"] == index.vocabulary  # plain JSON
    again = ContentIndex.from_json(text)
    hist = rng.integers(0, len(ITEMS), size=(16, 4))
    lengths = rng.integers(0, 5, size=16)
    candidates = rng.integers(0, len(ITEMS), size=(16, 5))
    assert np.array_equal(content_scores(index, hist, lengths, candidates),
                          content_scores(again, hist, lengths, candidates))
    with pytest.raises(DataError, match="unreadable content index"):
        ContentIndex.from_json(json.dumps({"format": 1, "vocabulary": ["a"], "idf": []}))
    with pytest.raises(DataError, match="unreadable content index"):
        ContentIndex.from_json("[1, 2]")


def test_bad_input_is_a_clear_error():
    index = build()
    hist, lengths = histories([[0, 2]])
    with pytest.raises(ValueError, match="candidates holds item id 8, outside .* 8 items"):
        content_scores(index, hist, lengths, np.array([[0, 8]]))
    with pytest.raises(ValueError, match="candidates holds item id -1"):
        content_scores(index, hist, lengths, np.array([[-1, 0]]))
    with pytest.raises(ValueError, match="histories holds item id 9"):
        content_scores(index, np.array([[0, 9]]), np.array([2]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="same number of rows"):
        content_scores(index, hist, lengths, np.array([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match="same number of rows"):
        content_scores(index, hist, np.array([2, 2]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="matrices"):
        content_scores(index, hist, lengths, np.array([1, 2]))
    with pytest.raises(ValueError, match="lengths must lie in 0..4"):
        content_scores(index, hist, np.array([5]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="decay"):
        content_scores(index, hist, lengths, np.array([[1, 2]]), decay=0.0)
    with pytest.raises(ValueError, match="one entry per item; got 2, 1 and 1"):
        ContentIndex.build(["a", "b"], ["a"], [""])
    with pytest.raises(ValueError, match="integer item ids"):
        content_scores(index, hist, lengths, np.array([[1.0, 2.0]]))


def test_a_hundred_thousand_items_are_stored_sparsely():
    rng = np.random.default_rng(0)
    n, words = 100_000, np.array([f"w{i}" for i in range(5000)])
    genres = np.array(["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "War",
                       "Western"])
    titles = [" ".join(row) for row in words[rng.integers(0, len(words), (n, 3))].tolist()]
    raw = [f"{t} ({1930 + y})" for t, y in zip(titles, rng.integers(0, 90, n).tolist())]
    extras = [", ".join(row) for row in genres[rng.integers(0, len(genres), (n, 2))].tolist()]
    index = ContentIndex.build(titles, raw, extras)
    assert len(index) == n and index.num_tokens == len(words) + len(genres) + 9
    # at most 3 title words + 2 genres + 1 decade per item: CSR, not n x V
    assert index.indptr.shape == (n + 1,)
    assert index.indices.size == index.data.size == index.indptr[-1] <= 6 * n
    assert index.data.nbytes + index.indices.nbytes + index.indptr.nbytes < 8 * 6 * n + 8 * n + 8
    hist = rng.integers(0, n, size=(64, 10))
    candidates = rng.integers(0, n, size=(64, 20))
    scores = content_scores(index, hist, np.full(64, 10), candidates, batch_rows=16)
    assert scores.shape == (64, 20) and np.all((scores >= 0) & (scores <= 1 + 1e-6))
    assert np.array_equal(scores, content_scores(index, hist, np.full(64, 10), candidates))
