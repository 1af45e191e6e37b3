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
from components.llm.aggregation import agreement, borda
from components.llm.permutation import parse_permutation
from components.llm.windows import apply_window, window_spans, worst
from components.shard_store import ShardStore


# The statuses training may use; ``unusable`` and ``failed`` labels are left out.
USABLE = ("complete", "repaired")


class NoUsableLabels(DataError):
    """The teacher produced no label that training may use."""


@dataclass
class LabelTask:
    """One ranking pass over a question's candidates, in that pass's prompt order."""

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
    pass_index: int = 0


def make_tasks(
    question_ids: list[str], questions: list[str], candidate_ids: list[list[str]], passage_of: Callable[[str], str],
    cfg: LabelConfig, seed: int,
) -> list[LabelTask]:
    """``labels.passes`` tasks per question: the first in candidate order (or a per-question seeded
    shuffle, ``shuffle_candidates``), each further one in another seeded shuffle; ``label_rows``
    aggregates a question's passes by Borda count."""
    tasks = []
    for qid, q, cands in zip(question_ids, questions, candidate_ids):
        for p in range(cfg.passes):
            order = list(cands)
            if p or cfg.shuffle_candidates:
                random.Random(f"{seed}:{qid}" + (f":{p}" if p else "")).shuffle(order)
            tasks.append(LabelTask(qid, q, order, [passage_of(d) for d in order], order=list(range(len(order))), pass_index=p))
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


@dataclass(frozen=True)
class QuestionCost:
    """What labelling one question costs under the window settings, before paying for it."""

    calls: int
    prompt_tokens: int
    max_completion_tokens: int  # the max_tokens the calls ask for: a ceiling on what is billed


def question_cost(question: str, passages: list[str], cfg: LabelConfig, count_tokens: Callable[[str], int],
                  per_message: int = 5) -> QuestionCost:
    """Calls and tokens one question's labelling takes: every window of every pass, its messages
    built exactly as labelling builds them, counted with ``count_tokens`` (the teacher's
    tokenizer) plus ``per_message`` tokens of chat-template markup per message."""
    task = LabelTask("cost", question, [str(i) for i in range(len(passages))], passages, order=list(range(len(passages))))
    calls = prompt = completion = 0
    for span in window_spans(len(passages), cfg.window, cfg.step):
        messages = _messages(task, span, cfg)
        calls += 1
        prompt += sum(count_tokens(m["content"]) + per_message for m in messages)
        completion += _max_tokens(span[1] - span[0])
    return QuestionCost(calls * cfg.passes, prompt * cfg.passes, completion * cfg.passes)


@dataclass
class RunStats:
    sent: int = 0
    cached: int = 0
    failed_calls: int = 0
    timed_out_attempts: int = 0
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
        calls: dict[tuple[str, int], tuple[LabelTask, tuple[int, int], Call]] = {}
        for k, t in enumerate(active):
            span = spans[t.question_id][r]
            call = Call(t.question_id, _messages(t, span, cfg), _max_tokens(span[1] - span[0]))
            if r == 0:
                t.prompt_hash = call.prompt_hash if len(spans[t.question_id]) == 1 else prompts.prompt_hash(
                    call.messages + [{"role": "schedule", "content": f"window={cfg.window},step={cfg.step}"}]
                )
            calls[(call.request_id, k)] = (t, span, call)
        sent = call_cache.complete([c for _, _, c in calls.values()], model, store, cache, send, {"round": r},
                                   desc=f"labels, round {r + 1}/{rounds}" if rounds > 1 else "labels")
        stats.sent += sent.sent
        stats.cached += sent.cached
        stats.failed_calls += len(sent.failed)
        stats.timed_out_attempts += sent.timeouts
        for t, _, call in calls.values():
            if call.request_id in sent.failed:
                t.error = t.error or sent.failed[call.request_id]
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
    """The training-facing label of each question: its passes' orders aggregated by Borda count
    (one pass: that pass's order), the worst usable pass's status, and the passes' agreement
    (mean Kendall's τ); ``failed`` when no pass got all its replies."""
    by_question: dict[str, list[LabelTask]] = {}
    for t in tasks:
        by_question.setdefault(t.question_id, []).append(t)
    rows = []
    for qid, passes in by_question.items():
        first = passes[0]
        done = [t for t in passes if not t.error]
        rankings = [[t.candidate_ids[i] for i in t.order] for t in done]
        ranked = borda(rankings) if rankings else [first.candidate_ids[i] for i in first.order]
        status = worst([s for t in done for s in t.statuses]) if done else "failed"  # type: ignore[arg-type]
        rows.append({
            "question_id": qid,
            "question": first.question,
            "candidate_ids": first.candidate_ids,
            "permutation": [first.candidate_ids.index(d) for d in ranked],
            "ranked_ids": ranked,
            "status": status,
            "model": model,
            "prompt_hash": "+".join(t.prompt_hash for t in passes),
            "tokens_in": sum(t.tokens_in for t in passes),
            "tokens_out": sum(t.tokens_out for t in passes),
            "latency_s": round(sum(t.latency_s for t in passes), 4),
            "calls": sum(t.calls for t in passes),
            "passes": len(done),
            "agreement": round(agreement(rankings), 4),
            "raw": "\n---\n".join(r for t in passes for r in t.raw),
            "error": "; ".join(t.error for t in passes if t.error),
        })
    return rows


def summarize(rows: list[dict[str, Any]], stats: RunStats) -> dict[str, Any]:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("complete", "repaired", "unusable", "failed")}
    usable = [r for r in rows if r["status"] in USABLE]
    return {
        "questions": len(rows),
        **counts,
        "passes": max((r["passes"] for r in rows), default=0),
        "mean_agreement": round(sum(r["agreement"] for r in usable) / len(usable), 4) if usable else None,
        "tokens_in": sum(r["tokens_in"] for r in rows),
        "tokens_out": sum(r["tokens_out"] for r in rows),
        "calls_sent": stats.sent,
        "calls_cached": stats.cached,
        "failed_calls": stats.failed_calls,
        "timed_out_attempts": stats.timed_out_attempts,
        "wall_s": round(stats.seconds, 2),
        "calls_per_s": round(stats.sent / stats.seconds, 3) if stats.seconds > 0 and stats.sent else 0.0,
    }
