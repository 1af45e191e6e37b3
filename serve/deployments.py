"""The Ray Serve deployments of the RAG endpoint.

* ``Retriever``: query encoder + FAISS index from a run's artifacts (local or ``s3://``), the
  distilled query encoder when the run has one; requests are batched (``@serve.batch``) so one
  forward pass encodes many questions and one FAISS call searches them; optional re-ranking by
  the run's Stage 1 ranker.
* ``Generator``: the RAG generator client (``components.llm.generator``) over the configured
  OpenAI-compatible endpoints; without any, each replica starts its own llama.cpp server with the
  packaged SmolLM2. A generator that cannot answer, or whose local server cannot even start (no
  llama.cpp installed, a missing model), is reported, not raised, so ``/ask`` becomes a 503 and
  the app, ``/retrieve`` included, still deploys and serves.
* ``RAGIngress``: the HTTP contract of ``serve.api``, built in the replica.

Each takes the run's whole ``Config`` as a plain dict, so a Serve config file can carry it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import urllib.request
from typing import Any, Optional

from ray import serve
from ray.serve.handle import DeploymentHandle

from components import run_models
from components.config import Config, EndpointConfig
from components.corpus import load_corpus
from components.run import Run
from components.stages import lineage
from components.errors import ConfigError, IdistillError
from components.llm.chat import chat_backend
from components.llm.generator import Generator as GeneratorClient
from components.retrieval import Hits
from components.llm.backends import auth_headers
from components.urls import endpoint_url
from serve.api import ApiSettings, make_api


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64, max_queued_requests=256, health_check_period_s=10)
class Retriever:
    def __init__(self, config: dict[str, Any]) -> None:
        cfg = Config.model_validate(config)
        corpus = load_corpus(cfg.data.path, cfg.data.on_invalid)
        self.texts = dict(zip(corpus.ids, corpus.passages()))
        self.scratch = tempfile.mkdtemp(prefix="idistill-serve-")
        base = run_models.load_base(cfg, corpus)
        choice, run = cfg.serve.retriever, Run(cfg)
        problem = lineage.query_encoder_problem(run, "retriever") if choice != "base" else None
        if choice == "distilled" and problem:
            raise ConfigError(f"serve.retriever is 'distilled' but {cfg.run_dir}'s distilled retriever cannot be served: {problem}")
        if choice == "auto" and problem:
            print(f"serve: the base retriever, since the distilled one is unusable: {problem}")
        use_distilled = choice == "distilled" or (choice == "auto" and problem is None)
        self.dense = run_models.load_distilled(cfg, base, self.scratch) if use_distilled else base
        self.reranker = None
        if cfg.serve.rerank:
            problem = lineage.ranker_problem(run)
            if problem:
                raise ConfigError(f"serve.rerank is on but {cfg.run_dir}'s ranker cannot be served: {problem}")
            self.reranker = run_models.load_rerank(cfg, self.dense, self.texts.__getitem__, cfg.serve.rerank_depth, self.scratch)
        self.name = self.reranker.name if self.reranker else self.dense.name
        self._search_batch.set_max_batch_size(cfg.serve.max_batch_size)
        self._search_batch.set_batch_wait_timeout_s(cfg.serve.batch_wait_timeout_s)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def _search_batch(self, requests: list[tuple[str, int]]) -> list[dict[str, Any]]:
        questions = [q for q, _ in requests]
        depth = max(k for _, k in requests)
        if self.reranker is not None:
            hits = self.reranker.rerank(questions, self.dense.search(questions, max(depth, self.reranker.depth)), depth)
        else:
            hits = self.dense.search(questions, depth)
        return [self._passages(hits, i, k) for i, (_, k) in enumerate(requests)]

    def _passages(self, hits: Hits, i: int, k: int) -> dict[str, Any]:
        rows = [{"id": d, "score": s, "text": self.texts[d]} for d, s in zip(hits.ids[i][:k], hits.scores[i][:k])]
        return {"retriever": self.name, "passages": rows}

    async def search(self, question: str, k: int) -> dict[str, Any]:
        return await self._search_batch((question, k))

    def describe(self) -> dict[str, Any]:
        return {"retriever": self.name, "documents": len(self.texts)}

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=32, max_queued_requests=64)
class Generator:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = Config.model_validate(config).generator
        self.backend = chat_backend(self.cfg)
        self.running = contextlib.ExitStack()  # a local llama.cpp server lives as long as the replica
        self.client: Optional[GeneratorClient] = None
        self.not_started = ""  # why the local server could not start: /ask answers 503, /retrieve serves on
        try:
            self.endpoints = self.running.enter_context(self.backend.serving())
        except (IdistillError, OSError) as e:
            self.endpoints, self.not_started = [], str(e)
            print(f"generator: not started, /ask will answer 503: {e}")

    async def _client(self) -> GeneratorClient:
        """Built on first use: asking an ``auto`` endpoint for its model must not stop the replica
        from starting while that endpoint is down."""
        if self.client is None:
            endpoints = await asyncio.to_thread(self.backend.ready, self.endpoints)
            self.client = GeneratorClient(endpoints, self.cfg)
        return self.client

    async def answer(self, question: str, passages: list[dict[str, Any]]) -> dict[str, Any]:
        if self.not_started:
            return {"ok": False, "error": f"not started: {self.not_started}"}
        try:
            client = await self._client()
            reply = await client.answer(question, [p["id"] for p in passages], [p["text"] for p in passages])
        except IdistillError as e:
            return {"ok": False, "error": str(e)}
        return {"ok": True, "answer": reply.answer, "cited_ids": reply.cited_ids, "model": reply.model}

    async def status(self) -> dict[str, Any]:
        return {"generator": {"backend": self.backend.name, "reachable": await asyncio.to_thread(self._reachable)}}

    def _reachable(self) -> bool:
        return any(_answers(e) for e in self.endpoints)

    def __del__(self) -> None:
        if getattr(self, "running", None) is not None:
            self.running.close()


def _answers(endpoint: EndpointConfig) -> bool:
    try:
        request = urllib.request.Request(endpoint_url(endpoint.base_url, "/models"), headers=auth_headers(endpoint))
        with urllib.request.urlopen(request, timeout=2) as r:
            return r.status == 200
    except (OSError, ConfigError):
        return False


@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=128, max_queued_requests=512)
@serve.ingress()
class RAGIngress:
    def __init__(self, retriever: DeploymentHandle, generator: DeploymentHandle, settings: dict[str, Any]) -> None:
        self.retriever, self.generator, self.settings = retriever, generator, ApiSettings(**settings)

    def __serve_build_asgi_app__(self) -> Any:
        return make_api(self, self.settings)

    async def retrieve(self, question: str, k: int) -> dict[str, Any]:
        return await self.retriever.search.remote(question, k)

    async def answer(self, question: str, passages: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.generator.answer.remote(question, passages)

    async def health(self) -> dict[str, Any]:
        return {**(await self.retriever.describe.remote()), **(await self.generator.status.remote())}
