"""The README's and the OpenAPI's item examples run as written, against a catalogue that
holds the MovieLens titles they name: `llara recommend` with --checkpoint and --url, curl's
JSON body, the schema's example, and the service's resolve endpoint."""

import json
import re
import shlex

import pytest
import requests

from llara.config.serving import ServingConfig
from llara.serve.run import start, stop
from tests.cli.test_cli import _llara
from tests.cli.test_serve_cli import ranking_rows
from tests.conftest import REPO
from tests.serve.test_service import free_port


WALKTHROUGH = "## From a log to a served model"
"""The README section on its own catalogue (a shop's), which tests/test_walkthrough.py runs."""


def readme_commands(program: str) -> list[str]:
    """Every README line that starts with `program`, continuation lines joined, outside the
    walkthrough (whose items are a shop's)."""
    text = (REPO / "README.md").read_text()
    start = text.index(WALKTHROUGH)
    text = (text[:start] + text[text.index("\n## ", start + 1):]).replace("\\\n", " ")
    return [line.split("#")[0].strip() for line in text.splitlines()
            if line.strip().startswith(program)]


@pytest.fixture(scope="module")
def catalogue_service(ray_local, catalogue_checkpoint):
    config = ServingConfig(checkpoint=str(catalogue_checkpoint), port=free_port(), replicas=1,
                           cpus_per_replica=1, max_history=50, device="cpu")
    yield start(config, log=lambda *_: None)
    stop()


def test_the_readmes_recommend_commands_run_as_written(catalogue_checkpoint, catalogue_service):
    commands = readme_commands("llara recommend")
    assert len(commands) >= 4 and any("--url" in c for c in commands)
    for command in commands:
        args = shlex.split(command)[2:]
        for option, value in (("--checkpoint", str(catalogue_checkpoint)),
                              ("--url", catalogue_service)):
            if option in args:
                args[args.index(option) + 1] = value
        rows = ranking_rows(_llara("recommend", *args))
        expected = int(args[args.index("--k") + 1]) if "--k" in args else 20
        assert len(rows) == expected, (command, rows)


def test_the_readmes_curl_body_and_the_schemas_example_are_answered(catalogue_service):
    (curl,) = [c for c in readme_commands("curl") if "/v1/recommend" in c]
    body = json.loads(re.search(r"-d '(.*)'", curl).group(1))
    schema = requests.get(f"{catalogue_service}/openapi.json", timeout=30).json()
    example = schema["components"]["schemas"]["RecommendRequest"]["examples"][0]
    assert "Star Wars (1977)" in body["history"] and "Star Wars (1977)" in example["history"]
    for request in (body, example):
        reply = requests.post(f"{catalogue_service}/v1/recommend", json=request, timeout=120)
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["items"]) == request["k"]
    resolve = schema["components"]["schemas"]["ResolveRequest"]["examples"][0]
    reply = requests.post(f"{catalogue_service}/v1/items/resolve", json=resolve, timeout=30)
    assert reply.status_code == 200, reply.text
    assert [i["id"] for i in reply.json()["items"]] == [49, 180, 11]


REFERENCES = [("Chasing Amy", 422, "names 2 items (ids 245, 267)"),
              ("Star Wars (1977)", 200, ""), ("star wars", 200, ""),
              ("Usual Suspects, The", 200, ""), ("Star Wars (1978)", 422, "did you mean")]


def test_titles_resolve_alike_in_every_entry_point(catalogue_checkpoint, catalogue_service):
    for reference, status, words in REFERENCES:
        reply = requests.post(f"{catalogue_service}/v1/recommend",
                              json={"history": [reference], "k": 1}, timeout=120)
        assert reply.status_code == status and words in reply.text, reply.text
    # the command line, both ways, for a title that resolves and one that names two items
    for reference, status, words in (REFERENCES[1], REFERENCES[0]):
        for where in (("--url", catalogue_service),
                      ("--checkpoint", str(catalogue_checkpoint))):
            done = _llara("recommend", *where, "--history", reference, "--k", "1")
            assert (done.returncode == 0) == (status == 200), done.stdout + done.stderr
            assert words in done.stdout, done.stdout
