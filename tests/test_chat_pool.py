"""The HTTP teacher pool against the real simulator server on 127.0.0.1 (no Ray needed)."""

import asyncio
import socket

import pytest

from components.config import EndpointConfig, LabelConfig
from components.corpus import load_collection
from components.errors import ConfigError
from components.llm.backends import ChatPool, pool_actors
from components.llm.prompts import ranking_messages
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator

COLLECTION = load_collection("demo")
ORACLE = Oracle(COLLECTION, COLLECTION.split("train").qrels)


def _sim(**settings) -> SimulatorServer:
    return SimulatorServer(TeacherSimulator(ORACLE, SimSettings(**settings)))


def _requests(n=6):
    qs = COLLECTION.questions
    return [(ranking_messages(qs.texts[i], COLLECTION.corpus.passages()[:5]), 64) for i in range(n)]


def _pool(*servers, **cfg) -> ChatPool:
    cfg = {"backoff_s": 0.01, **cfg}
    return ChatPool([EndpointConfig(base_url=s.base_url, model="m", max_concurrency=4) for s in servers], LabelConfig(**cfg))


def test_retries_transient_errors_until_success():
    with _sim(error_rate=0.5, seed=1) as server:
        results = asyncio.run(_pool(server, max_attempts=12).run(_requests(8)))
        stats = server.sim.stats
    assert all(r.ok for r in results)
    assert all(r.text.startswith("[") for r in results)
    assert max(r.attempts for r in results) > 1
    assert stats["answered"] == 8 and stats["requests"] > 8


def test_bounded_tries_then_failed_with_reason():
    with _sim(error_rate=1.0) as server:
        results = asyncio.run(_pool(server, max_attempts=3).run(_requests(4)))
        assert server.sim.stats["requests"] == 12
    assert not any(r.ok for r in results)
    assert all(r.attempts == 3 and r.error.startswith("HTTP ") for r in results)


def test_client_errors_are_not_retried():
    with _sim() as server:
        [result] = asyncio.run(_pool(server).run([([{"role": "user", "content": "no passages here"}], 16)]))
        assert server.sim.stats["requests"] == 1
    assert not result.ok and result.attempts == 1 and "HTTP 400" in result.error


def test_unreachable_endpoint_is_a_failed_row_not_a_crash():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pool = ChatPool([EndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m")], LabelConfig(max_attempts=2, backoff_s=0.01))
    [result] = asyncio.run(pool.run(_requests(1)))
    assert not result.ok and "Connect" in result.error and result.attempts == 2


def test_concurrency_cap_is_respected_and_load_is_spread():
    with _sim(latency_s=0.05, max_concurrency=2) as a, _sim(latency_s=0.05, max_concurrency=2) as b:
        pool = ChatPool(
            [EndpointConfig(base_url=s.base_url, model="m", max_concurrency=2) for s in (a, b)], LabelConfig(max_attempts=1)
        )
        results = asyncio.run(pool.run(_requests(16)))
        assert a.sim.stats["rejected_429"] == 0 and b.sim.stats["rejected_429"] == 0
        assert a.sim.stats["answered"] > 0 and b.sim.stats["answered"] > 0
    assert all(r.ok for r in results)


def test_qps_cap():
    import time

    with _sim() as server:
        pool = ChatPool([EndpointConfig(base_url=server.base_url, model="m", max_qps=20)], LabelConfig())
        start = time.monotonic()
        asyncio.run(pool.run(_requests(10)))
        assert time.monotonic() - start >= 9 / 20 * 0.9


def test_api_key_comes_from_the_named_env_var(monkeypatch):
    with _sim() as server:
        endpoint = EndpointConfig(base_url=server.base_url, model="m", api_key_env="IDISTILL_TEST_KEY")
        pool = ChatPool([endpoint], LabelConfig(max_attempts=1))
        with pytest.raises(ConfigError, match="IDISTILL_TEST_KEY"):
            asyncio.run(pool.run(_requests(1)))
        monkeypatch.setenv("IDISTILL_TEST_KEY", "sk-secret")
        [result] = asyncio.run(pool.run(_requests(1)))
        assert result.ok and server.sim.stats["with_bearer_token"] == 1
    assert "sk-secret" not in repr(result)


def test_pool_actor_count_never_splits_a_cap_below_one():
    cfg = LabelConfig(actors=4)
    assert pool_actors([EndpointConfig(base_url="u", model="m", max_concurrency=1)], cfg) == 1
    assert pool_actors([EndpointConfig(base_url="u", model="m", max_concurrency=16)], cfg) == 4


def test_retry_after_is_parsed_in_both_forms_and_capped():
    import email.utils
    import time

    from components.llm.backends import retry_after_s

    assert retry_after_s("2", cap=60) == 2.0
    assert retry_after_s("inf", cap=60) == 60 and retry_after_s("1e9", cap=60) == 60  # never waits forever
    in_five = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 <= retry_after_s(in_five, cap=60) <= 5
    assert retry_after_s(email.utils.formatdate(time.time() - 100, usegmt=True), cap=60) == 0
    assert retry_after_s("soon", cap=60) is None and retry_after_s("nan", cap=60) is None and retry_after_s(None, cap=60) is None


def test_an_endless_retry_after_waits_at_most_the_cap():
    import time

    with _sim(max_concurrency=1, retry_after="inf", latency_s=0.05) as server:
        pool = ChatPool([EndpointConfig(base_url=server.base_url, model="m", max_concurrency=4)],
                        LabelConfig(max_attempts=3, backoff_s=0.0, max_retry_after_s=0.1))
        start = time.monotonic()
        results = asyncio.run(pool.run(_requests(3)))
        assert server.sim.stats["rejected_429"] > 0
    assert time.monotonic() - start < 5 and any(r.ok for r in results)


def test_a_failing_endpoint_cools_down_while_a_healthy_one_takes_the_requests():
    with _sim(error_rate=1.0) as broken, _sim() as healthy:
        results = asyncio.run(_pool(broken, healthy, max_attempts=5, cooldown_after_failures=2, cooldown_s=60).run(_requests(12)))
        tried_broken = broken.sim.stats["requests"]
    assert all(r.ok for r in results)
    # Without the cool-down about half of all first attempts (and retries) would go to the broken one.
    assert tried_broken <= 2 + 4, f"the broken endpoint kept being picked: {tried_broken} requests"


def test_timed_out_attempts_are_counted_and_no_url_credentials_reach_errors():
    with _sim(latency_s=1.0) as server:
        url = server.base_url.replace("http://", "http://user:pw@") + "?key=sk-secret"
        pool = ChatPool([EndpointConfig(base_url=url, model="m")], LabelConfig(max_attempts=2, backoff_s=0.0, timeout_s=0.2))
        [result] = asyncio.run(pool.run(_requests(1)))
    assert not result.ok and result.timeouts == 2 and "timed out" in result.error
    assert "pw" not in result.error + result.endpoint and "sk-secret" not in result.error + result.endpoint


def test_redacted_urls_keep_the_address_and_mask_credentials():
    from components.urls import redact_url

    assert redact_url("https://user:pw@api.example.com:8443/v1?key=sk-1&x=2") == "https://***@api.example.com:8443/v1?key=***&x=***"
    assert redact_url("http://10.0.0.5:8000/v1") == "http://10.0.0.5:8000/v1"


def test_each_reply_is_stored_the_moment_it_arrives_and_stored_ones_are_not_sent_again(tmp_path):
    import json
    import time

    from components.call_cache import Call, ReplyWriter, open_store
    from components.llm.backends import _ChatActor

    calls = [Call(f"q{i}", m, t) for i, (m, t) in enumerate(_requests(6))]
    batch = {"request_id": [c.request_id for c in calls], "messages": [json.dumps(c.messages) for c in calls],
             "max_tokens": [c.max_tokens for c in calls]}
    store = open_store(str(tmp_path / "calls"))
    writer = ReplyWriter(store, "m", {})
    stored_at: list[float] = []  # when each shard was written
    per_shard: list[int] = []

    class Timed(ReplyWriter):
        def __call__(self, records):
            super().__call__(records)
            stored_at.append(time.monotonic())
            per_shard.append(len(records))

    with _sim(latency_s=0.6, latency_jitter_s=0.55, seed=3) as server:
        endpoint = EndpointConfig(base_url=server.base_url, model="m", max_concurrency=8).model_dump()
        actor = _ChatActor([endpoint], LabelConfig().client_settings().model_dump(), 1, Timed(store, "m", {}))
        columns = actor(batch)
        returned_at = time.monotonic()
        assert all(columns["ok"]) and server.sim.stats["answered"] == 6
        # A shard per reply, or per group of replies that arrived while the previous shard was written:
        # never one per batch.
        assert sum(per_shard) == 6 and len(store.shards()) == len(per_shard) > 1
        assert returned_at - min(stored_at) > 0.2  # the first reply was safe long before the straggler came back
        # A retried task (a new actor) answers stored requests from the store: nothing is paid twice.
        again = _ChatActor([endpoint], LabelConfig().client_settings().model_dump(), 1, writer)(batch)
        assert server.sim.stats["answered"] == 6 and again["text"] == columns["text"]


def test_model_discovery_sends_the_endpoints_token_and_the_cache_key_ignores_replicas(monkeypatch):
    from components.llm.chat import chat_backend
    from components.llm.chat.endpoint_pool import discover_model

    monkeypatch.setenv("IDISTILL_TEST_KEY", "sk-secret")
    with _sim() as a, _sim() as b:
        endpoints = [EndpointConfig(base_url=s.base_url, api_key_env="IDISTILL_TEST_KEY") for s in (a, b)]
        assert discover_model(endpoints[0]).model == "teacher-sim[noise=0]" and a.sim.stats["models_with_bearer_token"] == 1
        one = chat_backend(LabelConfig(endpoints=endpoints[:1])).model_id()
        assert chat_backend(LabelConfig(endpoints=endpoints)).model_id() == one  # a second replica re-pays nothing
    assert chat_backend(LabelConfig(endpoints=endpoints, model_id="my-teacher")).model_id() == "my-teacher"
