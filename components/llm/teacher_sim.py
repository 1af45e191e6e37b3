"""Teacher simulator: an OpenAI-compatible chat server on loopback that ranks like an oracle.

It reads our ranking prompt, looks up which passages are relevant (a gold answer inside the passage,
or a judged-relevant document when the collection has no answers), and answers with a permutation:
relevant passages first, ordered by ``relevance + noise * N(0, 1)``. With ``graded`` it ranks every
candidate, as a capable LLM would, by a graded signal instead: the judgement grade, plus one for a
gold answer inside the passage, plus an independent lexical score in [0, 1) (the share of the
question's and answers' content words the passage holds), so the order below the relevant ones is
the teacher's, not the base retriever's. ``position_bias`` lowers each passage's score in
proportion to its place in the prompt (a real LLM favours early positions), and ``drop_rate``
leaves ids out of the reply (the parser repairs them, as it must for a real LLM).

Asked to write questions for a passage (corpus-only mode), it builds each from the content words
of one of the passage's sentences ("what is known about <up to 7 content words>"), a crude but
deterministic stand-in for an LLM, and remembers its source passage: when later asked to rank for
that question, the source passage is the relevant one, as a capable LLM would judge it. Knobs inject latency, HTTP
errors, malformed and truncated replies, and a concurrency cap (429 beyond it), so the labelling
fan-out can be fault- and load-tested against a teacher of known quality. Results obtained with it
are always reported as "simulated teacher" with these settings.

``GET /stats`` returns call counts, including successful answers per prompt, which is how tests
prove that no call is paid twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Optional

from aiohttp import web

from components.answer_match import has_answer
from components.corpus import Collection
from components.llm.prompts import prompt_hash

_QUESTION = re.compile(r"^Question:\s*(.*)$", re.MULTILINE)
_PASSAGE = re.compile(r"^\[(\d+)\]\s*(.*)$", re.MULTILINE)
_KEY_WORDS = 12
_GENERATE = re.compile(r"Write (\d+) different natural questions")
_STOP = frozenset("""a an and are as at be by for from has have in is it its of on or that the this to was were which
with were been their there these those than then also into such can may not but about over under between""".split())

@dataclass
class SimSettings:
    noise: float = 0.0
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    error_rate: float = 0.0
    malformed_rate: float = 0.0
    truncate_rate: float = 0.0
    max_concurrency: int = 0  # 0: unlimited; else requests beyond it get 429
    # The Retry-After of every 429, as sent (seconds, an HTTP-date, or junk such as "inf"); several
    # values separated by " | " are drawn at random, one per 429.
    retry_after: str = "0.05"
    seed: int = 0
    model: str = "teacher-sim"
    graded: bool = False  # rank every candidate by grade + answer + lexical score (see the module docstring)
    position_bias: float = 0.0  # score lost from the first prompt position to the last
    drop_rate: float = 0.0  # share of ids left out of a reply

    @property
    def model_id(self) -> str:
        """The name it serves under, carrying the settings that shape its labels, so the report
        names a simulated teacher with its noise and labels from two settings never share a cache."""
        shape = [f"noise={self.noise:g}"] + (["graded"] if self.graded else [])
        shape += [f"position_bias={self.position_bias:g}"] if self.position_bias else []
        shape += [f"drop={self.drop_rate:g}"] if self.drop_rate else []
        return f"{self.model}[{','.join(shape)}]"

    def describe(self) -> str:
        return "simulated teacher (" + ", ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "model") + ")"


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9][a-z0-9-]+", text.lower()) if w not in _STOP and len(w) > 2}


def _key(text: str) -> str:
    return " ".join(text.split()[:_KEY_WORDS]).lower()


class Oracle:
    """Knows, for each question text, which passages are relevant."""

    def __init__(self, collection: Collection, qrels: dict[str, dict[str, int]]) -> None:
        qs = collection.questions
        self.answers = {" ".join(t.split()): (qs.answers[i] if qs.answers else []) for i, t in enumerate(qs.texts)}
        self.grades = {" ".join(qs.texts[i].split()): {d: r for d, r in qrels.get(q, {}).items() if r > 0} for i, q in enumerate(qs.ids)}
        self.docs_by_key: dict[str, set[str]] = {}
        for doc_id, passage in zip(collection.corpus.ids, collection.corpus.passages()):
            self.docs_by_key.setdefault(_key(passage), set()).add(doc_id)

    def remember(self, question: str, source_passage: str) -> None:
        """A question the simulator wrote: its source passage is the relevant one."""
        self.grades[" ".join(question.split())] = {d: 1 for d in self.docs_by_key.get(_key(source_passage), set())}

    def _grade(self, passage: str, grades: dict[str, int]) -> int:
        return max((grades.get(d, 0) for d in self.docs_by_key.get(_key(passage), set())), default=0)

    def relevance(self, question: str, passages: list[str]) -> list[float]:
        """1 for a relevant passage (a gold answer inside it, else a judged-relevant document), else 0."""
        q = " ".join(question.split())
        answers, grades = self.answers.get(q, []), self.grades.get(q, {})
        if answers:
            return [1.0 if has_answer(p, answers) else 0.0 for p in passages]
        return [1.0 if self._grade(p, grades) else 0.0 for p in passages]

    def graded_relevance(self, question: str, passages: list[str]) -> list[float]:
        """Judgement grade + 1 for a gold answer inside + the lexical score: every candidate placed."""
        q = " ".join(question.split())
        answers, grades = self.answers.get(q, []), self.grades.get(q, {})
        words = _content_words(" ".join([q, *answers]))
        return [self._grade(p, grades) + (1.0 if answers and has_answer(p, answers) else 0.0)
                + (len(words & _content_words(p)) / (len(words) + 1) if words else 0.0) for p in passages]


class TeacherSimulator:
    def __init__(self, oracle: Oracle, settings: SimSettings) -> None:
        self.oracle, self.settings = oracle, settings
        self.rng = random.Random(settings.seed)
        self.in_flight = 0
        self.stats: Counter[str] = Counter()
        self.answered_per_prompt: Counter[str] = Counter()

    def ranking_text(self, user: str) -> str:
        m = _QUESTION.search(user)
        passages = [p for _, p in sorted(((int(i), p) for i, p in _PASSAGE.findall(user)))]
        if not m or not passages:
            raise ValueError("prompt has no 'Question:' line or no [i] passages")
        s = self.settings
        rel = (self.oracle.graded_relevance if s.graded else self.oracle.relevance)(m.group(1), passages)
        scores = [r + s.noise * self.rng.gauss(0, 1) - s.position_bias * i / max(1, len(passages) - 1) for i, r in enumerate(rel)]
        order = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
        if s.drop_rate:
            order = [i for i in order if self.rng.random() >= s.drop_rate]
        return " > ".join(f"[{i + 1}]" for i in order)

    def question_text(self, user: str, n: int) -> str:
        """``n`` questions from the content words of the passage's sentences (one line each)."""
        head = user.split("\n\nWrite ", 1)[0]
        if "Passage: " not in head:
            raise ValueError("question prompt has no 'Passage:' before 'Write'")
        passage = " ".join(head.rsplit("Passage: ", 1)[1].split()).removesuffix(" …")
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", passage) if s.strip()] or [passage]
        out = []
        for i in range(n):
            words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]+", sentences[i % len(sentences)]) if w.lower() not in _STOP and len(w) > 3]
            question = "what is known about " + " ".join(w.lower() for w in words[:7])
            self.oracle.remember(question, passage)
            out.append(question)
        return "\n".join(out)

    def _retry_after(self) -> str:
        return self.rng.choice(self.settings.retry_after.split(" | "))

    async def chat(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        if request.headers.get("Authorization", "").startswith("Bearer "):
            self.stats["with_bearer_token"] += 1
        s = self.settings
        if s.max_concurrency and self.in_flight >= s.max_concurrency:
            self.stats["rejected_429"] += 1
            return web.json_response({"error": {"message": "too many requests"}}, status=429, headers={"Retry-After": self._retry_after()})
        self.in_flight += 1
        try:
            try:
                body = await request.json()
                messages = body["messages"]
                user = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
            except (json.JSONDecodeError, KeyError, StopIteration, TypeError):
                return web.json_response({"error": {"message": "malformed request"}}, status=400)
            delay = max(0.0, s.latency_s + self.rng.uniform(-s.latency_jitter_s, s.latency_jitter_s))
            if delay:
                await asyncio.sleep(delay)
            if self.rng.random() < s.error_rate:
                status = self.rng.choice([500, 502, 503, 429])
                self.stats[f"injected_{status}"] += 1
                headers = {"Retry-After": self._retry_after()} if status == 429 else None
                return web.json_response({"error": {"message": f"injected {status}"}}, status=status, headers=headers)
            try:
                wants = _GENERATE.search(user)
                text = self.question_text(user, int(wants.group(1))) if wants else self.ranking_text(user)
            except ValueError as e:
                return web.json_response({"error": {"message": str(e)}}, status=400)
            roll = self.rng.random()
            if roll < s.malformed_rate:
                text, self.stats["malformed"] = "I think the passages are all relevant.", self.stats["malformed"] + 1
            elif roll < s.malformed_rate + s.truncate_rate:
                text, self.stats["truncated"] = text[: max(1, len(text) // 3)], self.stats["truncated"] + 1
            self.answered_per_prompt[prompt_hash(messages)] += 1
            self.stats["answered"] += 1
            return web.json_response(
                {
                    "id": f"sim-{self.stats['answered']}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": s.model_id,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(user.split()), "completion_tokens": len(text.split()),
                              "total_tokens": len(user.split()) + len(text.split())},
                }
            )
        finally:
            self.in_flight -= 1

    async def stats_view(self, request: web.Request) -> web.Response:
        return web.json_response(
            {**self.stats, "settings": asdict(self.settings), "answered_per_prompt": dict(self.answered_per_prompt)}
        )

    async def models(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").startswith("Bearer "):
            self.stats["models_with_bearer_token"] += 1
        return web.json_response({"object": "list", "data": [{"id": self.settings.model_id, "object": "model"}]})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/stats", self.stats_view)
        return app


class SimulatorServer:
    """Run a simulator on 127.0.0.1 in a background thread (tests, benchmarks, the CLI)."""

    def __init__(self, sim: TeacherSimulator, port: int = 0) -> None:
        self.sim, self.port = sim, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: Optional[web.AppRunner] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "SimulatorServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.sim.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __exit__(self, *exc: Any) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
