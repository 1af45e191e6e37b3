"""The transports under the chat backends (``components.llm.chat``): how requests fan out over Ray Data.

* ``openai``: a pool of OpenAI-compatible endpoints (vLLM servers, OpenAI, a local llama.cpp server,
  the simulator). Our own Ray Data stage rather than ``ray.data.llm``'s HTTP processor, because in
  Ray 2.60 that stage retries only 408/429/502/503/504, passes a 500's error body through as if it
  were the answer, and sends a batch's requests one at a time. Here each actor sends its batch
  concurrently under per-endpoint QPS and concurrency caps, split evenly across actors (whose
  number is capped by the smallest endpoint concurrency, so the split never exceeds a cap), retries
  429/5xx/timeouts with exponential backoff and jitter up to ``max_attempts``, and marks a row
  ``failed`` with the reason instead of failing the job.
* ``vllm``: ``ray.data.llm``'s vLLM engine processor on GPU workers; imported lazily so the package
  works without vllm.

API keys are read from the environment variable each endpoint names, at call time in the actor;
they are never logged or written to an artifact.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator, Optional, Protocol

import numpy as np

from components.config import ChatClientConfig, EndpointConfig, LabelConfig
from components.errors import ConfigError
from components.group_commit import GroupCommit
from components.urls import endpoint_url, redact_url


class Persist(Protocol):
    """Where replies are stored (``call_cache.ReplyWriter``)."""

    def __call__(self, records: list[dict[str, Any]]) -> None:
        """Store result records (as one shard)."""

    def stored(self) -> dict[str, dict[str, Any]]:
        """The successful replies already stored, by request id, as result records."""


RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
# Batches Ray Data hands one actor ahead of time, and how many of them run at once on its event
# loop. Actors store each reply the moment it arrives, so a job killed mid-run loses only the
# requests still on the wire.
BATCHES_IN_FLIGHT_PER_ACTOR = 4
BATCHES_RUNNING_PER_ACTOR = 3


@dataclass
class ChatResult:
    text: str
    ok: bool
    error: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    attempts: int
    endpoint: str
    timeouts: int = 0  # attempts that timed out: a provider may bill them although no reply came


def retry_after_s(value: Optional[str], cap: float) -> Optional[float]:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP-date), at most
    ``cap``; None when absent or unreadable. A server asking for ``inf`` or next week gets ``cap``."""
    if not value:
        return None
    try:
        wait = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        wait = when.timestamp() - time.time()
    if math.isnan(wait):
        return None
    return min(max(wait, 0.0), cap)


class _RateLimiter:
    """At most ``qps`` request starts per second (0: unlimited); coroutine-safe within one loop."""

    def __init__(self, qps: float) -> None:
        self.interval = 1.0 / qps if qps > 0 else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        start = max(now, self.next_at)
        self.next_at = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


def auth_headers(endpoint: EndpointConfig) -> dict[str, str]:
    """The endpoint's bearer token, read from the environment variable it names, at call time."""
    if not endpoint.api_key_env:
        return {}
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise ConfigError(f"environment variable {endpoint.api_key_env} (API key for {redact_url(endpoint.base_url)}) is not set")
    return {"Authorization": f"Bearer {key}"}


class ChatPool:
    """Sends chat requests to a pool of endpoints, spreading load to the least busy one."""

    def __init__(self, endpoints: list[EndpointConfig], cfg: ChatClientConfig, parts: int = 1) -> None:
        """A pool holding a ``1/parts`` slice of every endpoint's concurrency and QPS caps."""
        if not endpoints:
            raise ConfigError("no endpoint: name at least one OpenAI-compatible base_url")
        self.endpoints, self.cfg = endpoints, cfg
        self.limits = [max(1, e.max_concurrency // parts) for e in endpoints]
        self.qps = [e.max_qps / parts for e in endpoints]
        self.rng = random.Random()
        self.failures = [0] * len(endpoints)  # consecutive failed attempts per endpoint
        self.cool_until = [0.0] * len(endpoints)

    def _bind(self) -> None:
        """Caps live on the running event loop: one loop per actor, shared by every batch in flight."""
        loop = asyncio.get_running_loop()
        if getattr(self, "_loop", None) is not loop:
            self._loop = loop
            self._in_flight = [0] * len(self.endpoints)
            self._semaphores = [asyncio.Semaphore(n) for n in self.limits]
            self._limiters = [_RateLimiter(q) for q in self.qps]

    async def run(
        self, requests: list[tuple[list[dict[str, str]], int]],
        on_result: Optional[Callable[[int, ChatResult], Awaitable[None]]] = None,
    ) -> list[ChatResult]:
        """Complete ``(messages, max_tokens)`` requests concurrently; results in input order.
        ``on_result(i, result)`` is awaited as each one finishes, not when the slowest does."""
        import aiohttp

        self._bind()
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        connector = aiohttp.TCPConnector(limit=sum(self.limits))

        async def one(session: Any, i: int, messages: list[dict[str, str]], max_tokens: int) -> ChatResult:
            result = await self._complete(session, messages, max_tokens)
            if on_result is not None:
                await on_result(i, result)
            return result

        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            return list(await asyncio.gather(*(one(session, i, m, t) for i, (m, t) in enumerate(requests))))

    def _pick(self) -> int:
        """The endpoint with the most free capacity (ties broken at random), leaving out those
        cooling down after ``cooldown_after_failures`` failed attempts in a row unless all are."""
        now = time.monotonic()
        warm = [i for i in range(len(self.endpoints)) if self.cool_until[i] <= now]
        candidates = warm or [min(range(len(self.endpoints)), key=self.cool_until.__getitem__)]
        free = {i: self.limits[i] - self._in_flight[i] for i in candidates}
        best = max(free.values())
        return self.rng.choice([i for i, f in free.items() if f == best])

    def _outcome(self, i: int, ok: bool) -> None:
        """Count an endpoint's failures in a row; after enough, rest it for ``cooldown_s``."""
        self.failures[i] = 0 if ok else self.failures[i] + 1
        if self.failures[i] >= self.cfg.cooldown_after_failures:
            self.cool_until[i] = time.monotonic() + self.cfg.cooldown_s
            self.failures[i] = 0

    async def _complete(self, session: Any, messages: list[dict[str, str]], max_tokens: int) -> ChatResult:
        started = time.monotonic()
        error, timeouts = "", 0
        for attempt in range(1, self.cfg.max_attempts + 1):
            i = self._pick()
            endpoint = self.endpoints[i]
            self._in_flight[i] += 1
            try:
                async with self._semaphores[i]:
                    await self._limiters[i].wait()
                    status, body, retry_after = await self._post(session, endpoint, messages, max_tokens)
            except ConfigError:
                raise
            except asyncio.TimeoutError:
                status, body, retry_after = None, None, None
                timeouts += 1
                error = f"timed out after {self.cfg.timeout_s:g} s at {redact_url(endpoint.base_url)}"
            except Exception as e:  # refused connections, broken responses: retryable
                status, body, retry_after = None, None, None
                error = f"{type(e).__name__} at {redact_url(endpoint.base_url)}"
            finally:
                self._in_flight[i] -= 1
            if status == 200 and body is not None:
                try:
                    text = body["choices"][0]["message"]["content"] or ""
                    usage = body.get("usage") or {}
                    self._outcome(i, ok=True)
                    return ChatResult(
                        text=text, ok=True, error="", tokens_in=int(usage.get("prompt_tokens", 0)),
                        tokens_out=int(usage.get("completion_tokens", 0)), latency_s=time.monotonic() - started,
                        attempts=attempt, endpoint=redact_url(endpoint.base_url), timeouts=timeouts,
                    )
                except (KeyError, IndexError, TypeError, ValueError):
                    error = f"HTTP 200 without choices[0].message.content from {redact_url(endpoint.base_url)}"
            elif status is not None:
                error = f"HTTP {status} from {redact_url(endpoint.base_url)}: {str(body)[:200]}"
                if status not in RETRYABLE:
                    break  # a bad request will not get better by asking again
            self._outcome(i, ok=False)
            if attempt < self.cfg.max_attempts:
                backoff = self.cfg.backoff_s * 2 ** (attempt - 1)
                await asyncio.sleep(max(retry_after or 0.0, self.rng.uniform(0.5, 1.0) * backoff))
        return ChatResult("", False, error, 0, 0, time.monotonic() - started, attempt, redact_url(endpoint.base_url), timeouts)

    async def _post(
        self, session: Any, endpoint: EndpointConfig, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[int, Any, Optional[float]]:
        payload = {
            "model": endpoint.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            "max_tokens": max_tokens,
            **endpoint.extra_body,
        }
        url = endpoint_url(endpoint.base_url, "/chat/completions")
        async with session.post(url, json=payload, headers={"Content-Type": "application/json", **auth_headers(endpoint)}) as resp:
            try:
                body: Any = await resp.json(content_type=None)
            except ValueError:
                body = (await resp.text())[:200]
            return resp.status, body, retry_after_s(resp.headers.get("Retry-After"), self.cfg.max_retry_after_s)


def _requests(batch: dict[str, Any]) -> list[tuple[list[dict[str, str]], int]]:
    return [(json.loads(m), int(t)) for m, t in zip(batch["messages"], batch["max_tokens"])]


def _columns(batch: dict[str, Any], results: list[ChatResult]) -> dict[str, list[Any]]:
    return {
        "request_id": list(batch["request_id"]),
        "text": [r.text for r in results],
        "ok": [r.ok for r in results],
        "error": [r.error for r in results],
        "tokens_in": [r.tokens_in for r in results],
        "tokens_out": [r.tokens_out for r in results],
        "latency_s": [r.latency_s for r in results],
        "attempts": [r.attempts for r in results],
        "timeouts": [r.timeouts for r in results],
    }


def _records(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def complete_batch(pool: ChatPool, batch: dict[str, Any]) -> dict[str, list[Any]]:
    """Send one batch of chat-stage rows (``request_id``, JSON ``messages``, ``max_tokens``)
    concurrently through ``pool``, outside Ray; return the result columns."""
    return _columns(batch, asyncio.run(pool.run(_requests(batch))))


class _ChatActor:
    """A Ray Data actor holding one slice of the pool's capacity. Several batches run at once on
    one event loop, so the caps stay busy across batch boundaries instead of idling at each. Each
    reply is stored the moment it arrives (a straggler holds back no batch-mate's paid reply),
    and a request already stored is answered from the store (a retried Ray task sends it again
    otherwise). Replies that arrive while a shard is being written go into the next shard together
    (``GroupCommit``), shared by every batch on the loop."""

    def __init__(self, endpoints: list[dict[str, Any]], cfg: dict[str, Any], parts: int, persist: Persist) -> None:
        self.pool = ChatPool([EndpointConfig(**e) for e in endpoints], ChatClientConfig(**cfg), parts)
        self.stored = persist.stored()
        self.journal: GroupCommit[tuple[str, ChatResult]] = GroupCommit(
            lambda replies: persist(_records(_columns({"request_id": [r for r, _ in replies]}, [res for _, res in replies]))))
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        ids = [str(r) for r in batch["request_id"]]
        todo = [i for i, r in enumerate(ids) if r not in self.stored]
        requests = _requests(batch)

        async def store(j: int, result: ChatResult) -> None:
            await self.journal.put((ids[todo[j]], result))

        sent = asyncio.run_coroutine_threadsafe(self.pool.run([requests[i] for i in todo], store), self.loop).result()
        results = dict(zip(todo, sent))
        columns = _columns(batch, [results[i] if i in results else _stored_result(self.stored[r]) for i, r in enumerate(ids)])
        self.stored.update({r: rec for r, rec in zip(ids, _records(columns)) if rec["ok"]})
        return columns


def _stored_result(record: dict[str, Any]) -> ChatResult:
    return ChatResult(str(record["text"]), True, "", int(record["tokens_in"]), int(record["tokens_out"]),
                      float(record["latency_s"]), int(record["attempts"]), "stored", 0)


def pool_actors(endpoints: list[EndpointConfig], cfg: ChatClientConfig) -> int:
    """Actors sending requests: at most the smallest endpoint's concurrency, so that each actor's
    equal slice of every cap is at least one request and the slices never add up past a cap."""
    return max(1, min([cfg.actors] + [e.max_concurrency for e in endpoints]))


def http_stage(
    rows: list[dict[str, Any]], endpoints: list[EndpointConfig], cfg: ChatClientConfig, persist: Persist
) -> Iterator[Any]:
    """Fan ``rows`` (``request_id``, JSON ``messages``, ``max_tokens``) out over the endpoint pool with
    Ray Data; each actor ``persist``s a batch's replies the moment they return, then the batch is
    yielded to the caller."""
    import ray

    actors = pool_actors(endpoints, cfg)
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), len(rows) // cfg.batch_size + actors)))
    out = ds.map_batches(
        _ChatActor,
        fn_constructor_kwargs={
            "endpoints": [e.model_dump() for e in endpoints],
            "cfg": cfg.client_settings().model_dump(),
            "parts": actors,
            "persist": persist,
        },
        batch_size=cfg.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(
            size=actors,
            max_tasks_in_flight_per_actor=BATCHES_IN_FLIGHT_PER_ACTOR,
            max_concurrent_calls_per_actor=BATCHES_RUNNING_PER_ACTOR,
            enable_true_multi_threading=True,
        ),
        num_cpus=cfg.actor_cpus,
    )
    yield from out.iter_batches(batch_size=None, batch_format="pandas")


def vllm_processor_config(cfg: LabelConfig) -> Any:
    """The ``ray.data.llm`` vLLM engine config built from ``labels.vllm`` (needs no vllm to build)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    v = cfg.vllm
    return vLLMEngineProcessorConfig(
        model_source=v.model,
        engine_kwargs={
            "tensor_parallel_size": v.tensor_parallel_size,
            "max_model_len": v.max_model_len,
            "gpu_memory_utilization": v.gpu_memory_utilization,
            "enable_prefix_caching": True,
        },
        batch_size=v.batch_size,
        concurrency=v.concurrency,
        accelerator_type=v.accelerator_type,
    )


def vllm_stage(rows: list[dict[str, Any]], cfg: LabelConfig, persist: Persist) -> Iterator[Any]:
    """Rank with vLLM engines inside Ray Data on GPU workers. Refuses to start on a GPU-less
    cluster, where the stage would otherwise wait for a GPU forever. Replies are stored as each
    batch reaches the driver (GPU time, not per-call fees, is what a kill loses here)."""
    import pandas as pd
    import ray
    from ray.data.llm import build_processor

    gpus = ray.cluster_resources().get("GPU", 0)
    need = cfg.vllm.tensor_parallel_size * cfg.vllm.concurrency
    if gpus < need:
        raise ConfigError(
            f"labels.backend 'vllm' needs {need} GPU(s) (tensor_parallel_size x concurrency) but the Ray cluster has {gpus:g}; "
            "use the 'openai' backend with a served model, or add GPU workers"
        )
    temperature = cfg.temperature
    processor = build_processor(
        vllm_processor_config(cfg),
        preprocess=lambda row: {
            "messages": json.loads(row["messages"]),
            "sampling_params": {"temperature": temperature, "max_tokens": int(row["max_tokens"])},
        },
        postprocess=lambda row: {
            "request_id": row["request_id"],
            "text": row.get("generated_text") or "",
            "ok": bool(row.get("generated_text") is not None),
            "error": "",
            "tokens_in": int(row.get("num_input_tokens") or 0),
            "tokens_out": int(row.get("num_generated_tokens") or 0),
            "latency_s": float(row.get("time_taken_llm") or 0.0),
            "attempts": 1,
        },
    )
    out = processor(ray.data.from_items(rows))
    for batch in out.iter_batches(batch_size=cfg.batch_size, batch_format="pandas"):
        frame = pd.DataFrame(batch)
        persist(frame.to_dict("records"))
        yield frame

