"""`llara data fetch lastfm|steam`: the paper's released tables from where its authors publish
them, tested through the real download code on a file:// mirror of the same layout."""

import json

import pytest

from llara.config import DataConfig
from llara.data import PreparedDataset, fetch_dataset, import_released
from llara.data.fetch import DATASETS, RELEASED_URL, FetchError
from tests.data.test_released import toy_rows, write_released


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    for name in ("lastfm", "steam"):
        write_released(tmp_path / "mirror" / name, toy_rows(users=16), pickled=True)
    monkeypatch.setenv("LLARA_RELEASED_URL", (tmp_path / "mirror").as_uri())
    return tmp_path / "mirror"


@pytest.mark.parametrize("name, domain", [("lastfm", "music"), ("steam", "games")])
def test_released_tables_are_fetched_and_import_with_their_domain(tmp_path, mirror, name,
                                                                  domain):
    assert RELEASED_URL.startswith("https://huggingface.co/datasets/joyliao7777/LLaRA")
    folder = fetch_dataset(name, tmp_path / "cache", log=lambda *_: None)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*DATASETS[name].files, "SOURCE.json"])
    source = json.loads((folder / "SOURCE.json").read_text())
    assert source["origin"] == f"{mirror.as_uri()}/{name}" and source["domain"] == domain
    with pytest.raises(Exception, match="allow-pickle|allow_pickle"):
        import_released(folder, tmp_path / "refused", DataConfig())
    report = import_released(folder, tmp_path / "data", DataConfig(), allow_pickle=True)
    assert report.domain == domain and PreparedDataset.open(tmp_path / "data").domain == domain
    # Cached: a second fetch reads nothing (the mirror may be gone).
    for path in (mirror / name).iterdir():
        path.unlink()
    assert fetch_dataset(name, tmp_path / "cache", log=lambda *_: None) == folder


def test_a_missing_file_fails_the_fetch_and_leaves_no_cache(tmp_path, mirror):
    (mirror / "lastfm" / "Test_data.df").unlink()
    with pytest.raises(FetchError, match="Test_data.df"):
        fetch_dataset("lastfm", tmp_path / "cache", log=lambda *_: None)
    assert not (tmp_path / "cache" / "datasets" / "lastfm" / "SOURCE.json").exists()
