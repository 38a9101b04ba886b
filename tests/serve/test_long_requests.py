"""A request the service admits never becomes a 5xx and never fails the requests batched with
it: a list too long for the model's prompt.max_length is a 422 that names the limit, sent at
the same moment as good requests, which get their 200s."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from llara.config.serving import ServingConfig
from llara.serve.run import start, stop
from tests.serve.test_service import free_port


@pytest.fixture(scope="module")
def short_service(ray_local, served_checkpoint, tmp_path_factory):
    """The served model with prompt.max_length lowered so a long list cannot fit."""
    checkpoint = tmp_path_factory.mktemp("short") / "best"
    shutil.copytree(served_checkpoint, checkpoint)
    run = json.loads((checkpoint / "run.json").read_text())
    run["config"]["prompt"]["max_length"] = 260
    (checkpoint / "run.json").write_text(json.dumps(run))
    config = ServingConfig(checkpoint=str(checkpoint), port=free_port(), max_batch_size=8,
                           batch_wait_ms=200, max_history=50, device="cpu")
    url = start(config, log=lambda *_: None)
    yield url
    stop()


def test_a_too_long_list_is_a_422_and_the_good_requests_beside_it_succeed(short_service):
    items = requests.get(f"{short_service}/healthz", timeout=30).json()["items"]
    titles = [requests.get(f"{short_service}/v1/items/{i}", timeout=30).json()["title"]
              for i in range(items)]
    longest = sorted(range(items), key=lambda i: -len(titles[i]))
    bodies = [{"history": [5, 6, 7], "k": 3}, {"history": [9], "candidates": [0, 1, 2]},
              {"history": [3, 4], "k": 5}, {"history": [1, 2], "candidates": longest}]
    with ThreadPoolExecutor(4) as pool:  # at the same moment: one batch
        replies = list(pool.map(lambda b: requests.post(f"{short_service}/v1/recommend",
                                                        json=b, timeout=120), bodies))
    assert [r.status_code for r in replies[:3]] == [200, 200, 200], [r.text for r in replies]
    assert replies[3].status_code == 422
    detail = replies[3].json()
    assert detail["field"] == "candidates" and "give 2 to" in detail["detail"]
    most = int(detail["detail"].rsplit("give 2 to ", 1)[1])
    fitting = requests.post(f"{short_service}/v1/recommend",
                            json={"history": [1, 2], "candidates": longest[:most]}, timeout=120)
    assert fitting.status_code == 200 and len(fitting.json()["items"]) == most
