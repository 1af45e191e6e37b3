"""Paid LLM calls, cached: send only the requests whose reply is not stored yet, and store each
reply the moment it arrives, in the process that received it (a Ray Data actor), so a driver
killed mid-run loses only the requests still on the wire, not replies queued on their way back
to it.

Shared by the labelling rounds and the RAG evaluation. A reply is keyed by (question id, prompt
hash, model), so a rerun, or a restart after a kill, pays for no call that already completed;
failed calls are stored too (with their error) and sent again on the next run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from components import console
from components.llm import prompts
from components.shard_store import ShardStore

KEY_COLUMNS = ("question_id", "prompt_hash", "model")
RECORD_COLUMNS = ("text", "ok", "error", "tokens_in", "tokens_out", "latency_s", "attempts")


@dataclass(frozen=True)
class Call:
    question_id: str
    messages: list[dict[str, str]]
    max_tokens: int

    @property
    def prompt_hash(self) -> str:
        return prompts.prompt_hash(self.messages)

    @property
    def request_id(self) -> str:
        return f"{self.question_id}:{self.prompt_hash}"


def open_store(uri: str) -> ShardStore:
    return ShardStore(uri, KEY_COLUMNS)


@dataclass(frozen=True)
class ReplyWriter:
    """Turns one batch of backend results into stored rows and appends them as one shard.
    Picklable, so a backend can call it where the replies arrive."""

    store: ShardStore
    model: str
    extra: dict[str, Any]

    def rows(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [_row(rec, self.model, self.extra) for rec in records]

    def __call__(self, records: list[dict[str, Any]]) -> None:
        self.store.append(self.rows(records))

    def stored(self) -> dict[str, dict[str, Any]]:
        """This model's successful replies in the store, by request id, as result records: an
        actor answers a retried request from here instead of paying for it again."""
        return {f"{q}:{h}": {"request_id": f"{q}:{h}", **{k: r[k] for k in RECORD_COLUMNS}}
                for (q, h, m), r in cached_replies(self.store).items() if m == self.model}


# send(requests, persist): yields result batches (DataFrames) after ``persist`` has stored each.
Send = Callable[[list[dict[str, Any]], ReplyWriter], Iterable[Any]]


def cached_replies(store: ShardStore) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Stored successful replies by key."""
    return {k: r for k, r in store.latest().items() if r["ok"]}


@dataclass
class Sent:
    sent: int
    cached: int
    failed: dict[str, str]  # request id → error of the calls that never succeeded
    timeouts: int = 0  # attempts that timed out (billed by some providers, answered by none)


def complete(
    calls: list[Call], model: str, store: ShardStore, cache: dict[tuple[str, str, str], dict[str, Any]], send: Send,
    extra: dict[str, Any] | None = None, desc: str = "LLM calls",
) -> Sent:
    """Send the calls missing from ``cache``; ``send`` stores every reply (with the ``extra``
    columns) as its batch returns; add the successful ones to ``cache``. ``desc`` names the
    progress bar."""
    by_id = {c.request_id: c for c in calls}
    requests = [
        {"request_id": rid, "messages": json.dumps(c.messages), "max_tokens": c.max_tokens}
        for rid, c in by_id.items()
        if (c.question_id, c.prompt_hash, model) not in cache
    ]
    failed: dict[str, str] = {}
    timeouts = 0
    writer = ReplyWriter(store, model, dict(extra or {}))
    if requests:
        with console.bar(len(requests), desc, "call") as progress:
            for batch in send(requests, writer):
                records = batch.to_dict("records")
                for rec, row in zip(records, writer.rows(records)):
                    timeouts += row["timeouts"]
                    if row["ok"]:
                        cache[(row["question_id"], row["prompt_hash"], model)] = row
                    else:
                        failed[rec["request_id"]] = row["error"] or "call failed"
                progress.update(len(records))
                if failed:
                    progress.set_postfix(failed=len(failed), refresh=False)
    return Sent(sent=len(requests), cached=len(by_id) - len(requests), failed=failed, timeouts=timeouts)


def _row(rec: dict[str, Any], model: str, extra: dict[str, Any]) -> dict[str, Any]:
    question_id, prompt_hash = str(rec["request_id"]).rsplit(":", 1)  # see Call.request_id
    return {
        "question_id": question_id,
        "prompt_hash": prompt_hash,
        "model": model,
        **extra,
        "text": str(rec["text"]),
        "ok": bool(rec["ok"]),
        "error": str(rec["error"]),
        "tokens_in": int(rec["tokens_in"]),
        "tokens_out": int(rec["tokens_out"]),
        "latency_s": float(rec["latency_s"]),
        "attempts": int(rec["attempts"]),
        "timeouts": int(rec.get("timeouts", 0)),
    }
