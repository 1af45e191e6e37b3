"""Stage: label each training question's candidates with the teacher LLM's listwise ranking.

Requests fan out over Ray Data to the configured backend: an OpenAI-compatible endpoint pool
(``labels.endpoints`` or ``--llm-url``), a vLLM engine on GPU workers (``labels.backend: vllm``), or,
when neither is configured, llama.cpp's server with SmolLM2-135M-Instruct started on 127.0.0.1 for
the job's duration. Every reply is stored as it arrives (``RUN/labels/calls/``); a rerun pays for no
call twice. Writes ``RUN/labels/labels.parquet`` and ``summary.json``.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

import pyarrow as pa

from components import call_cache, console, storage
from components.config import LabelConfig, RayConfig
from components.labelling import RunStats, label_rows, make_tasks, run_labelling, summarize
from components.llm.chat import chat_backend
from components.run_layout import labels_uri
from components.run import Run, stage
from components.stages.candidates import build_candidates


def rank_lists(
    labels_cfg: LabelConfig, ray_cfg: RayConfig, seed: int, question_ids: list[str], questions: list[str],
    candidate_ids: list[list[str]], passage_of: Callable[[str], str], calls_uri: str,
) -> tuple[list[dict[str, Any]], RunStats, str, str]:
    """The teacher LLM's ranking of each question's candidates, every reply stored under
    ``calls_uri`` so that a rerun pays for none twice: the label rows, the call statistics, the
    teacher's model id and its backend's kind. The labels stage and Stage 2's pooled dev judge both
    rank this way."""
    tasks = make_tasks(question_ids, questions, candidate_ids, passage_of, labels_cfg, seed)
    store = call_cache.open_store(calls_uri)
    teacher = chat_backend(labels_cfg)
    model = teacher.model_id()
    with teacher.sender(ray_cfg) as send:
        stats = run_labelling(tasks, labels_cfg, model, store, send)
    store.compact()
    return label_rows(tasks, model), stats, model, teacher.name


@stage
def label(run: Run) -> str:
    """Label the training questions; return the URI of ``labels.parquet``."""
    cfg, collection = run.cfg, run.collection
    candidates = storage.read_parquet(build_candidates(run)).to_pydict()
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    out = labels_uri(cfg)
    rows, stats, model, endpoint_kind = rank_lists(
        cfg.labels, cfg.ray, cfg.seed, candidates["question_id"], candidates["question"], candidates["candidate_ids"],
        passages.__getitem__, storage.join(out, "calls"),
    )
    labels_file = storage.join(out, "labels.parquet")
    storage.write_parquet(labels_file, pa.Table.from_pylist(rows))
    summary = {"teacher": model, "backend": cfg.labels.backend, "endpoint_kind": endpoint_kind, **summarize(rows, stats),
               "labelled_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    storage.write_json(storage.join(out, "summary.json"), summary)
    console.say(
        "labels: {questions} questions — {complete} complete, {repaired} repaired, {unusable} unusable, {failed} failed; "
        "{calls_sent} calls sent ({calls_cached} cached), tokens in/out {tokens_in}/{tokens_out}, "
        "{wall_s} s, {calls_per_s} calls/s".format(**summary)
        + (f", {summary['timed_out_attempts']} attempts timed out (a provider may bill them)" if summary["timed_out_attempts"] else "")
        + (f"; {summary['passes']} shuffled passes per list, mean agreement (Kendall's τ) {summary['mean_agreement']}"
           if summary["passes"] > 1 else "")
    )
    console.say(f"labels: {labels_file} (teacher: {model})")
    return labels_file

