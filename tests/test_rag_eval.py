"""The RAG QA evaluation end to end on the demo collection with the real local generator
(llama.cpp + SmolLM2 on 127.0.0.1), and its resume: a rerun makes zero generator calls."""

from __future__ import annotations

import json

import pytest

from components.run import Run
from components.config import load_config
from components.corpus import load_collection
from components.stages.index import build_index
from components.stages.rag_eval import rag_eval

pytestmark = pytest.mark.slow


def test_rag_eval_scores_every_row_and_a_rerun_pays_nothing(ray_cluster, tmp_path, capsys):
    cfg = load_config(overrides=[f"run_dir={tmp_path}", "rag.max_questions=3", "rag.ks=[1,2]"])
    build_index(Run(cfg))
    path = rag_eval(Run(cfg))
    out = capsys.readouterr().out
    assert "llm: local llama.cpp server with SmolLM2-135M-Instruct" in out
    rag = json.loads(open(path).read())["rag"]
    assert rag["generator"].startswith("smollm2") and rag["questions"] == 3
    assert set(rag["rows"]) == {"bm25 k=1", "bm25 k=2", "base-minilm k=1", "base-minilm k=2", "closed-book", "oracle"}
    assert set(rag["skipped"]) == {"ranker", "distilled"}  # this run trained neither
    for row in rag["rows"].values():
        assert 0 <= row["em"] <= row["f1"] + 1e-9 <= 1 + 1e-9 and row["failed"] == 0
    # 6 systems x 3 questions; BM25 and MiniLM often return the same top passage: one paid call
    sent = int(out.split(" sent,")[0].rsplit(": ", 1)[1])
    assert 0 < sent <= 18
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## RAG QA" in md and "| oracle |" in md and (tmp_path / "report" / "rag.png").stat().st_size > 0
    rag_eval(Run(cfg, load_collection("demo")))
    again = capsys.readouterr().out
    assert f"0 sent, {sent} cached, 0 failed" in again
    assert "llm: local llama.cpp" not in again  # nothing to ask: no server started
    assert json.loads(open(path).read())["rag"]["rows"] == rag["rows"]
