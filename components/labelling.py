"""Listwise LLM labelling of candidate lists: the rounds of windowed ranking calls, the call
cache that makes every paid call count once, and the label rows that training reads.

Every call's reply is appended to a ``ShardStore`` (``RUN/labels/calls/``) as soon as its batch
returns, keyed by (question id, prompt hash, model). A rerun, or a restart after a kill, replays
cached replies and sends only the calls that never completed; failed calls are retried. The final
labels (``RUN/labels/labels.parquet``) are derived from the cache, one row per question.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from components import call_cache
from components.call_cache import Call, Send
from components.config import LabelConfig
from components.errors import DataError
from components.llm import prompts
from components.llm.permutation import parse_permutation
from components.llm.windows import apply_window, window_spans, worst
from components.shard_store import ShardStore


# The statuses training may use; ``unusable`` and ``failed`` labels are left out.
USABLE = ("complete", "repaired")


class NoUsableLabels(DataError):
    """The teacher produced no label that training may use."""


@dataclass
class LabelTask:
    """One question and its candidates in prompt order."""

    question_id: str
    question: str
    candidate_ids: list[str]
    passages: list[str]
    order: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    error: str = ""
    prompt_hash: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    calls: int = 0


def make_tasks(
    question_ids: list[str], questions: list[str], candidate_ids: list[list[str]], passage_of: Callable[[str], str],
    cfg: LabelConfig, seed: int,
) -> list[LabelTask]:
    """Tasks in candidate order, or in a per-question seeded shuffle to measure position bias."""
    tasks = []
    for qid, q, cands in zip(question_ids, questions, candidate_ids):
        cands = list(cands)
        if cfg.shuffle_candidates:
            random.Random(f"{seed}:{qid}").shuffle(cands)
        tasks.append(LabelTask(qid, q, cands, [passage_of(d) for d in cands], order=list(range(len(cands)))))
    return tasks


def _messages(task: LabelTask, span: tuple[int, int], cfg: LabelConfig) -> list[dict[str, str]]:
    window = [task.passages[i] for i in task.order[span[0] : span[1]]]
    return prompts.ranking_messages(
        task.question,
        window,
        max_words=cfg.max_words_per_passage,
        template=cfg.prompt_template or prompts.DEFAULT_TEMPLATE,
        system=cfg.system_prompt or prompts.DEFAULT_SYSTEM,
    )


def _max_tokens(width: int) -> int:
    return 6 * width + 24  # "[12] > " is about 5 tokens; leave room for a short preamble


@dataclass
class RunStats:
    sent: int = 0
    cached: int = 0
    failed_calls: int = 0
    seconds: float = 0.0


def run_labelling(tasks: list[LabelTask], cfg: LabelConfig, model: str, store: ShardStore, send: Send) -> RunStats:
    """Rank every task through its windows, bottom-up, one round of calls at a time."""
    stats = RunStats()
    started = time.monotonic()
    cache = call_cache.cached_replies(store)
    spans = {t.question_id: window_spans(len(t.candidate_ids), cfg.window, cfg.step) for t in tasks}
    rounds = max((len(s) for s in spans.values()), default=0)
    for r in range(rounds):
        active = [t for t in tasks if r < len(spans[t.question_id]) and not t.error]
        calls: dict[str, tuple[LabelTask, tuple[int, int], Call]] = {}
        for t in active:
            span = spans[t.question_id][r]
            call = Call(t.question_id, _messages(t, span, cfg), _max_tokens(span[1] - span[0]))
            if r == 0:
                t.prompt_hash = call.prompt_hash if len(spans[t.question_id]) == 1 else prompts.prompt_hash(
                    call.messages + [{"role": "schedule", "content": f"window={cfg.window},step={cfg.step}"}]
                )
            calls[call.request_id] = (t, span, call)
        sent = call_cache.complete([c for _, _, c in calls.values()], model, store, cache, send, {"round": r})
        stats.sent += sent.sent
        stats.cached += sent.cached
        stats.failed_calls += len(sent.failed)
        for rid, error in sent.failed.items():
            calls[rid][0].error = calls[rid][0].error or error
        for t, span, call in calls.values():
            reply = cache.get((t.question_id, call.prompt_hash, model))
            if reply is None:
                t.error = t.error or "no reply"
                continue
            parsed = parse_permutation(reply["text"], span[1] - span[0], cfg.min_fraction)
            t.order = apply_window(t.order, span, parsed.order)
            t.statuses.append(parsed.status)
            t.raw.append(reply["text"])
            t.tokens_in += int(reply["tokens_in"])
            t.tokens_out += int(reply["tokens_out"])
            t.latency_s += float(reply["latency_s"])
            t.calls += 1
    stats.seconds = time.monotonic() - started
    return stats


def label_rows(tasks: list[LabelTask], model: str) -> list[dict[str, Any]]:
    """The training-facing label of each question: ``failed`` when a call never succeeded."""
    rows = []
    for t in tasks:
        status = "failed" if t.error else worst(t.statuses)  # type: ignore[arg-type]
        rows.append({
            "question_id": t.question_id,
            "question": t.question,
            "candidate_ids": t.candidate_ids,
            "permutation": t.order,
            "ranked_ids": [t.candidate_ids[i] for i in t.order],
            "status": status,
            "model": model,
            "prompt_hash": t.prompt_hash,
            "tokens_in": t.tokens_in,
            "tokens_out": t.tokens_out,
            "latency_s": round(t.latency_s, 4),
            "calls": t.calls,
            "raw": "\n---\n".join(t.raw),
            "error": t.error,
        })
    return rows


def summarize(rows: list[dict[str, Any]], stats: RunStats) -> dict[str, Any]:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("complete", "repaired", "unusable", "failed")}
    return {
        "questions": len(rows),
        **counts,
        "tokens_in": sum(r["tokens_in"] for r in rows),
        "tokens_out": sum(r["tokens_out"] for r in rows),
        "calls_sent": stats.sent,
        "calls_cached": stats.cached,
        "failed_calls": stats.failed_calls,
        "wall_s": round(stats.seconds, 2),
        "calls_per_s": round(stats.sent / stats.seconds, 3) if stats.seconds > 0 and stats.sent else 0.0,
    }
