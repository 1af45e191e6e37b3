"""scripts/pool_seeds.py: per-question differences averaged over seeds, and the reports it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from pool_seeds import seed_mean_differences  # noqa: E402


def _report(base: list[float], distilled: list[float]) -> dict:
    return {"base": "base", "per_question": {"ndcg@10": {"base": base, "distilled": distilled}}}


def test_differences_are_averaged_over_seeds_question_by_question():
    reports = [_report([0.5, 0.2, 0.0], [0.7, 0.2, 0.1]), _report([0.5, 0.2, 0.0], [0.3, 0.4, 0.1])]
    assert np.allclose(seed_mean_differences(reports, "distilled", "base"), [0.0, 0.1, 0.1])


def test_top_k_hits_pool_like_ndcg():
    reports = [{"base": "base", "per_question": {"top-1": {"base": [1.0, 0.0], "distilled": [1.0, 1.0]}}},
               {"base": "base", "per_question": {"top-1": {"base": [1.0, 0.0], "distilled": [0.0, 1.0]}}}]
    assert np.allclose(seed_mean_differences(reports, "distilled", "base", metric="top-1"), [-0.5, 1.0])


def test_reports_over_other_questions_or_without_a_retriever_are_refused():
    with pytest.raises(ConfigError, match="different numbers of test questions"):
        seed_mean_differences([_report([0.5], [0.7]), _report([0.5, 0.1], [0.7, 0.1])], "distilled", "base")
    with pytest.raises(ConfigError, match="no per-question ndcg@10 for direct"):
        seed_mean_differences([_report([0.5], [0.7])], "direct", "base")


def test_the_script_prints_each_retriever_and_refuses_runs_with_different_bases(tmp_path):
    paths = []
    for seed, distilled in enumerate(([0.6, 0.3], [0.8, 0.1])):
        paths.append(tmp_path / f"seed{seed}.json")
        paths[-1].write_text(json.dumps(_report([0.5, 0.2], distilled)))
    out = subprocess.run([sys.executable, "scripts/pool_seeds.py", *map(str, paths)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2 seeds, 2 test questions" in out.stdout and "distilled − base: +0.1000" in out.stdout
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**_report([0.5, 0.2], [0.6, 0.3]), "base": "bm25"}))
    refused = subprocess.run([sys.executable, "scripts/pool_seeds.py", str(paths[0]), str(other)], cwd=ROOT,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "different bases" in refused.stderr
    for args, says in (([str(paths[0]), "--pair", "distilled", "nope"], "no per-question ndcg@10 for nope"),
                       ([str(tmp_path / "missing.json")], "no such report")):
        bad = subprocess.run([sys.executable, "scripts/pool_seeds.py", *args], cwd=ROOT, capture_output=True, text=True)
        assert bad.returncode != 0 and says in bad.stderr and "Traceback" not in bad.stderr


def test_a_recipe_against_another_is_paired_question_by_question_within_each_seed(tmp_path):
    mine = [_report([0.5, 0.2], [0.7, 0.4]), _report([0.5, 0.2], [0.6, 0.2])]
    theirs = [_report([0.5, 0.2], [0.6, 0.2]), _report([0.5, 0.2], [0.6, 0.3])]
    assert np.allclose(seed_mean_differences(mine, "distilled", "distilled", against=theirs), [0.05, 0.05])
    paths = {}
    for name, reports in (("mine", mine), ("theirs", theirs)):
        for seed, report in enumerate(reports):
            paths.setdefault(name, []).append(tmp_path / f"{name}{seed}.json")
            paths[name][-1].write_text(json.dumps(report))
    out = subprocess.run([sys.executable, "scripts/pool_seeds.py", *map(str, paths["mine"]), "--against", *map(str, paths["theirs"])],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "distilled − distilled (--against): +0.0500" in out.stdout
    short = subprocess.run([sys.executable, "scripts/pool_seeds.py", *map(str, paths["mine"]), "--against", str(paths["theirs"][0])],
                           cwd=ROOT, capture_output=True, text=True)
    assert short.returncode != 0 and "one report per seed" in short.stderr and "Traceback" not in short.stderr


def test_a_reference_run_of_another_base_is_subtracted_question_by_question(tmp_path):
    run, reference = tmp_path / "hybrid.json", tmp_path / "minilm.json"
    run.write_text(json.dumps({"base": "base-hybrid", "per_question": {"ndcg@10": {
        "bm25": [0.1, 0.2], "base-hybrid": [0.4, 0.2], "distilled": [0.6, 0.4]}}}))
    reference.write_text(json.dumps({"base": "base-minilm", "per_question": {"ndcg@10": {"bm25": [0.1, 0.2], "base-minilm": [0.5, 0.3]}}}))
    out = subprocess.run([sys.executable, "scripts/pool_seeds.py", str(run), "--reference", str(reference), "base-minilm"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"distilled − base-minilm of {reference}: +0.1000" in out.stdout
    assert f"base-hybrid − base-minilm of {reference}: -0.1000" in out.stdout
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"base": "base-minilm", "per_question": {"ndcg@10": {"bm25": [0.3, 0.2], "base-minilm": [0.5, 0.3]}}}))
    refused = subprocess.run([sys.executable, "scripts/pool_seeds.py", str(run), "--reference", str(other), "base-minilm"],
                             cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode != 0 and "not these runs'" in refused.stderr and "Traceback" not in refused.stderr
