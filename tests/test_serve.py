"""The RAG endpoint on a real local Ray cluster, over HTTP on 127.0.0.1: a real index of the demo
collection, the packaged MiniLM, and the llama.cpp generator (SmolLM2) in the Generator replica.

Three applications share one Serve instance: ``/open`` (no auth, the local generator),
``/secure`` (a bearer token, a generator endpoint that is down) and ``/nogen`` (a bearer token, a
local generator that cannot start).
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from components.run import Run
from components.answer_match import has_answer
from components.corpus import load_collection
from components.stages.index import build_index
from components.run import run_config
from serve.app import DEFAULT_SERVE_CONFIG, start
from tests.conftest import free_port

pytestmark = pytest.mark.slow

TOKEN_ENV = "IDISTILL_TEST_SERVE_TOKEN"


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


@pytest.fixture(scope="module")
def endpoint(ray_cluster, tmp_path_factory, monkeypatch_module):
    from ray import serve

    run_dir = str(tmp_path_factory.mktemp("serve_run"))
    port = free_port()
    common = [f"serve.port={port}", "serve.max_k=20", "serve.max_body_bytes=2048"]
    cfg = run_config(run_dir, overrides=common + [f"serve.auth_token_env={TOKEN_ENV}_UNSET"])
    build_index(Run(cfg))
    token = secrets.token_hex(16)
    monkeypatch_module.setenv(TOKEN_ENV, token)
    secure = run_config(run_dir, overrides=common + [
        f"serve.auth_token_env={TOKEN_ENV}", "generator.max_attempts=1",
        'generator.endpoints=[{base_url: "%s", model: m}]' % _dead_url(),
    ])
    # Three apps on the test cluster's 2 CPUs: reserve little per replica (the file is what a user
    # passes with --serve-config).
    shape = tmp_path_factory.mktemp("serve_cfg") / "serve.yaml"
    tree = yaml.safe_load(DEFAULT_SERVE_CONFIG.read_text())
    for d in tree["applications"][0]["deployments"]:
        d["ray_actor_options"] = {"num_cpus": 0.1}
    shape.write_text(yaml.safe_dump(tree))
    # No generator endpoint, and a local server that cannot start (its model is missing).
    no_generator = run_config(run_dir, overrides=common + [
        f"serve.auth_token_env={TOKEN_ENV}", "generator.local.model_path=/nonexistent/model.gguf",
        "generator.local.startup_timeout_s=30",
    ])
    base = start(cfg, str(shape), name="open", route_prefix="/open").rsplit("/open", 1)[0]
    start(secure, str(shape), name="secure", route_prefix="/secure")
    start(no_generator, str(shape), name="nogen", route_prefix="/nogen")
    yield {"base": base, "token": token}
    for app in ("open", "secure", "nogen"):
        serve.delete(app)
    serve.shutdown()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def call(url: str, body: Optional[bytes | dict] = None, token: Optional[str] = None, method: Optional[str] = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_retrieve_finds_the_judged_passage_for_real_questions(endpoint):
    test = load_collection("demo").split("test")
    questions = test.questions.subset(test.questions.ids[:10])
    found = 0
    for qid, text in zip(questions.ids, questions.texts):
        status, body = call(f"{endpoint['base']}/open/retrieve", {"question": text, "k": 5})
        assert status == 200, body
        assert body["retriever"] == "base-minilm" and len(body["passages"]) == 5
        scores = [p["score"] for p in body["passages"]]
        assert scores == sorted(scores, reverse=True)
        found += any(p["id"] in test.qrels.get(qid, {}) for p in body["passages"])
    assert found >= 8  # MiniLM finds ~0.97 of the demo's judged passages in its top 5


def test_ask_answers_real_questions_with_the_local_generator(endpoint):
    test = load_collection("demo").split("test")
    questions = test.questions.subset(test.questions.ids[:4])
    correct = 0
    for text, answers in zip(questions.texts, questions.answers):
        status, body = call(f"{endpoint['base']}/open/ask", {"question": text, "k": 3})
        assert status == 200, body
        assert body["answer"].strip() and body["generator"].startswith("smollm2")
        assert set(body["cited_ids"]) <= {p["id"] for p in body["passages"]} and len(body["passages"]) == 3
        correct += has_answer(body["answer"], answers)
    assert correct >= 1  # a 135M model, but the answer is in the retrieved passage


@pytest.mark.parametrize(
    "body, status, detail",
    [
        (b'{"question": "Where is Harfost?"', 400, "not valid JSON"),
        (b"", 422, "request body is required"),
        (b'{"k": 3}', 422, "question: Field required"),
        (b'{"question": ""}', 422, "question: must not be empty"),
        (b'{"question": "   "}', 422, "question: must not be empty"),
        (b'{"question": 42}', 422, "question: Input should be a valid string"),
        (b'{"question": ["a"]}', 422, "question: Input should be a valid string"),
        (b'{"question": "Where?", "k": 0}', 422, "k: must be between 1 and 20"),
        (b'{"question": "Where?", "k": -3}', 422, "k: must be between 1 and 20"),
        (b'{"question": "Where?", "k": 21}', 422, "k: must be between 1 and 20"),
        (b'{"question": "Where?", "k": "5"}', 422, "k: Input should be a valid integer"),
        (b'{"question": "Where?", "top": 5}', 422, "top: unknown field"),
        (b'{"question": "' + b"x" * 3000 + b'"}', 413, "larger than 2048 bytes"),
    ],
)
@pytest.mark.parametrize("route", ["retrieve", "ask"])
def test_bad_input_gets_a_clear_4xx(endpoint, route, body, status, detail):
    got, payload = call(f"{endpoint['base']}/open/{route}", body, method="POST")
    assert got == status and detail in payload["detail"], payload


def test_auth_protects_every_route_but_healthz(endpoint):
    base, token = f"{endpoint['base']}/secure", endpoint["token"]
    assert call(f"{base}/healthz")[0] == 200
    question = {"question": "Where is Harfost?", "k": 2}
    for t in (None, "wrong-" + token):
        status, body = call(f"{base}/retrieve", question, token=t)
        assert status == 401 and "bearer token" in body["detail"]
        assert call(f"{base}/openapi.json", token=t)[0] == 401
    status, body = call(f"{base}/retrieve", question, token=token)
    assert status == 200 and len(body["passages"]) == 2
    assert call(f"{base}/openapi.json", token=token)[0] == 200
    assert call(f"{endpoint['base']}/open/openapi.json")[0] == 200  # auth off: docs are public


def test_generator_down_gives_503_and_retrieve_still_works(endpoint):
    base, token = f"{endpoint['base']}/secure", endpoint["token"]
    status, body = call(f"{base}/ask", {"question": "Where is Harfost?"}, token=token)
    # The kind of failure, never the upstream's address or error body.
    assert status == 503 and body["detail"] == "generator unavailable: it could not be reached"
    assert call(f"{base}/retrieve", {"question": "Where is Harfost?"}, token=token)[0] == 200
    assert call(f"{base}/healthz") == (200, {"status": "ok"})  # without the token: up or down only
    status, health = call(f"{base}/healthz", token=token)
    assert status == 200 and health["generator"]["reachable"] is False and "127.0.0.1" not in json.dumps(health)


def test_an_app_whose_generator_cannot_start_still_deploys_and_retrieves(endpoint):
    base, token = f"{endpoint['base']}/nogen", endpoint["token"]
    assert call(f"{base}/retrieve", {"question": "Where is Harfost?"}, token=token)[0] == 200
    status, body = call(f"{base}/ask", {"question": "Where is Harfost?"}, token=token)
    assert status == 503 and body["detail"].startswith("generator unavailable: no generator is running")
    assert "nonexistent" not in body["detail"]  # the reason stays in the replica log
    status, health = call(f"{base}/healthz", token=token)
    assert status == 200 and health["generator"]["reachable"] is False


def test_the_token_never_reaches_the_logs(endpoint):
    import ray

    call(f"{endpoint['base']}/secure/retrieve", {"question": "Where is Harfost?"}, token=endpoint["token"])
    call(f"{endpoint['base']}/secure/retrieve", {"question": "Where is Harfost?"}, token="wrong")
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    files = [p for p in logs.rglob("*") if p.is_file()]
    assert files
    leaked = [p for p in files if endpoint["token"].encode() in p.read_bytes()]
    assert not leaked
