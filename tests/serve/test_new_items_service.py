"""New items posted to a real `llara serve` (Ray Serve, 127.0.0.1, two replicas): every replica
recommends them from its next answer on, without a restart; bad items are 4xx that say why."""

import requests
import pytest

from llara.config.serving import ServingConfig
from llara.serve.run import start, stop
from tests.serve.test_service import free_port


@pytest.fixture(scope="module")
def service(ray_local, cold_checkpoint, tmp_path_factory):
    new_items = tmp_path_factory.mktemp("new-items") / "new.jsonl"
    config = ServingConfig(checkpoint=str(cold_checkpoint), port=free_port(), replicas=2,
                           cpus_per_replica=0.5, max_batch_size=4, num_candidates=6,
                           new_item_candidates=2, device="cpu", new_items=str(new_items))
    url = start(config, log=lambda *_: None)
    yield url, new_items
    stop()


def test_a_posted_sequel_is_recommended_after_its_series_by_every_replica(service):
    url, new_items = service
    before = requests.get(f"{url}/healthz", timeout=30).json()["items"]
    reply = requests.post(f"{url}/v1/items", timeout=60, json={"items": [
        {"title": "Star Saga 11 (1990)", "text": "Action Sci-Fi"}]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["items"] == [{"id": before, "title": "Star Saga 11 (1990)"}]
    assert body["catalogue"] == before + 1
    replicas = set()
    for _ in range(12):  # requests spread over both replicas: each has the new item
        replicas.add(requests.get(f"{url}/v1/replica", timeout=30).json()["pid"])
        answer = requests.post(f"{url}/v1/recommend", timeout=60, json={
            "history": ["Star Saga 1", "Star Saga 2", "Star Saga 3"], "k": 6}).json()
        sources = {item["id"]: item["source"] for item in answer["items"]}
        assert sources.get(before) == "new", answer
        titled = requests.post(f"{url}/v1/recommend", timeout=60, json={
            "history": ["Star Saga 11"], "candidates": [0, 4, before]})
        assert titled.status_code == 200, titled.text  # named in a history, by its title
    assert len(replicas) == 2
    assert new_items.read_text().count("\n") == 1


def test_the_readmes_new_item_is_added_as_written(service):
    import json
    import re

    from tests.serve.test_readme_examples import readme_commands

    url, _ = service
    (curl,) = [c for c in readme_commands("curl") if "/v1/items" in c]
    body = json.loads(re.search(r"-d '(.*)'", curl).group(1))
    reply = requests.post(f"{url}/v1/items", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    assert [i["title"] for i in reply.json()["items"]] == [i["title"] for i in body["items"]]


@pytest.mark.parametrize("body, status, words", [
    ({"items": []}, 422, "items"),
    ({"items": [{"title": "x", "year": 1999}]}, 422, "year"),
    ({"items": [{"title": "Star Saga 1 (1990)"}]}, 422, "already"),
    ({"items": [{"title": "y" * 301}]}, 422, "title"),
])
def test_bad_new_items_are_refused_with_a_reason(service, body, status, words):
    url, new_items = service
    lines = new_items.read_text() if new_items.exists() else ""
    reply = requests.post(f"{url}/v1/items", json=body, timeout=60)
    assert reply.status_code == status and words in reply.text, reply.text
    assert (new_items.read_text() if new_items.exists() else "") == lines
