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
