"""Labelling rounds, the call cache and label rows, against the real simulator over HTTP.

The Ray Data fan-out is exercised in test_label_job.py; here requests go straight through the
same ``complete_batch`` the Ray actors run, so these tests need no cluster.
"""

import pandas as pd
import pytest

from components.answer_match import has_answer
from components.config import EndpointConfig, LabelConfig
from components.corpus import load_collection
from components.labelling import label_rows, make_tasks, run_labelling, summarize
from components.llm.backends import ChatPool, complete_batch
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator
from components.shard_store import ShardStore

COLLECTION = load_collection("demo")
PASSAGES = dict(zip(COLLECTION.corpus.ids, COLLECTION.corpus.passages()))


def _tasks(cfg: LabelConfig, n_questions=6, n_candidates=10):
    train = COLLECTION.split("train").questions
    qs = train.subset(train.ids[:n_questions])
    # Candidates: the gold passage placed last among distractors, so the ranking has work to do.
    gold = {q: next(iter(d)) for q, d in COLLECTION.split("train").qrels.items()}
    cands = []
    for i, qid in enumerate(qs.ids):
        others = [d for d in COLLECTION.corpus.ids if d != gold[qid]][i * 7 : i * 7 + n_candidates - 1]
        cands.append(others + [gold[qid]])
    return qs, make_tasks(qs.ids, qs.texts, cands, PASSAGES.__getitem__, cfg, seed=0)


def _direct_send(pool: ChatPool):
    def send(rows, persist):
        frame = pd.DataFrame(complete_batch(pool, pd.DataFrame(rows).to_dict("list")))
        persist(frame.to_dict("records"))
        yield frame

    return send


@pytest.fixture()
def sim():
    with SimulatorServer(TeacherSimulator(Oracle(COLLECTION, COLLECTION.split("train").qrels), SimSettings())) as server:
        yield server


def test_sliding_windows_bring_the_gold_passage_to_the_top(sim, tmp_path):
    cfg = LabelConfig(window=4, step=2)
    qs, tasks = _tasks(cfg)
    pool = ChatPool([EndpointConfig(base_url=sim.base_url, model="sim")], cfg)
    store = ShardStore(str(tmp_path / "calls"), ["question_id", "prompt_hash", "model"])
    stats = run_labelling(tasks, cfg, "sim", store, _direct_send(pool))
    rows = label_rows(tasks, "sim")
    assert stats.sent == 6 * 4 and stats.cached == 0  # 10 candidates, window 4, step 2 → 4 windows
    for row, answers in zip(rows, qs.answers):
        assert row["status"] == "complete" and row["calls"] == 4
        assert sorted(row["permutation"]) == list(range(10))
        assert has_answer(PASSAGES[row["ranked_ids"][0]], answers)  # bubbled up from the bottom
    summary = summarize(rows, stats)
    assert summary["complete"] == 6 and summary["questions"] == 6 and summary["tokens_in"] > 0


def test_rerun_replays_the_cache_and_pays_for_nothing(sim, tmp_path):
    cfg = LabelConfig(window=4, step=2)
    store = ShardStore(str(tmp_path / "calls"), ["question_id", "prompt_hash", "model"])
    pool = ChatPool([EndpointConfig(base_url=sim.base_url, model="sim")], cfg)
    _, first = _tasks(cfg)
    run_labelling(first, cfg, "sim", store, _direct_send(pool))
    paid = sim.sim.stats["answered"]
    _, again = _tasks(cfg)
    stats = run_labelling(again, cfg, "sim", store, _direct_send(pool))
    assert sim.sim.stats["answered"] == paid and stats.sent == 0 and stats.cached == 24
    assert label_rows(again, "sim") == label_rows(first, "sim")
    # Another teacher model is another key: nothing is reused across models.
    _, other = _tasks(cfg)
    assert run_labelling(other, cfg, "other-model", store, _direct_send(pool)).sent == 24


def test_failed_calls_become_failed_labels_and_are_retried_next_run(tmp_path):
    cfg = LabelConfig(max_attempts=2, backoff_s=0.01)
    store = ShardStore(str(tmp_path / "calls"), ["question_id", "prompt_hash", "model"])
    oracle = Oracle(COLLECTION, COLLECTION.split("train").qrels)
    with SimulatorServer(TeacherSimulator(oracle, SimSettings(error_rate=1.0))) as down:
        _, tasks = _tasks(cfg, n_questions=3)
        pool = ChatPool([EndpointConfig(base_url=down.base_url, model="sim")], cfg)
        stats = run_labelling(tasks, cfg, "sim", store, _direct_send(pool))
    rows = label_rows(tasks, "sim")
    assert [r["status"] for r in rows] == ["failed"] * 3 and stats.failed_calls == 3
    assert all("HTTP" in r["error"] for r in rows)
    with SimulatorServer(TeacherSimulator(oracle, SimSettings())) as up:
        _, tasks = _tasks(cfg, n_questions=3)
        pool = ChatPool([EndpointConfig(base_url=up.base_url, model="sim")], cfg)
        assert run_labelling(tasks, cfg, "sim", store, _direct_send(pool)).sent == 3
    assert [r["status"] for r in label_rows(tasks, "sim")] == ["complete"] * 3


def test_malformed_replies_are_unusable_not_dropped(tmp_path):
    cfg = LabelConfig()
    oracle = Oracle(COLLECTION, COLLECTION.split("train").qrels)
    with SimulatorServer(TeacherSimulator(oracle, SimSettings(malformed_rate=1.0))) as server:
        _, tasks = _tasks(cfg, n_questions=2)
        store = ShardStore(str(tmp_path / "calls"), ["question_id", "prompt_hash", "model"])
        run_labelling(tasks, cfg, "sim", store, _direct_send(ChatPool([EndpointConfig(base_url=server.base_url, model="sim")], cfg)))
    rows = label_rows(tasks, "sim")
    assert [r["status"] for r in rows] == ["unusable", "unusable"]
    assert all(r["raw"] for r in rows)


def test_shuffle_is_seeded_per_question():
    cfg = LabelConfig(shuffle_candidates=True)
    _, a = _tasks(cfg)
    _, b = _tasks(cfg)
    _, plain = _tasks(LabelConfig())
    assert [t.candidate_ids for t in a] == [t.candidate_ids for t in b]
    assert [t.candidate_ids for t in a] != [t.candidate_ids for t in plain]
    assert all(sorted(x.candidate_ids) == sorted(y.candidate_ids) for x, y in zip(a, plain))


def test_shuffled_passes_are_paid_per_pass_and_borda_cancels_a_position_biased_teacher(tmp_path):
    oracle = Oracle(COLLECTION, COLLECTION.split("train").qrels)
    # A teacher that mostly ranks by prompt position: the gold passage (last in candidate order) loses
    # a single pass; five shuffled passes put it back on top, and their agreement shows the bias.
    biased = SimSettings(position_bias=1.5)
    results = {}
    for passes in (1, 5):
        cfg = LabelConfig(window=10, step=10, passes=passes)
        qs, tasks = _tasks(cfg)
        with SimulatorServer(TeacherSimulator(oracle, biased)) as server:
            pool = ChatPool([EndpointConfig(base_url=server.base_url, model="sim")], cfg)
            store = ShardStore(str(tmp_path / f"calls{passes}"), ["question_id", "prompt_hash", "model"])
            stats = run_labelling(tasks, cfg, "sim", store, _direct_send(pool))
        rows = label_rows(tasks, "sim")
        assert stats.sent == 6 * passes and len(rows) == 6
        assert all(r["passes"] == passes and r["calls"] == passes and r["status"] == "complete" for r in rows)
        results[passes] = (rows, qs)
    one, _ = results[1]
    five, qs = results[5]
    assert all(r["agreement"] == 1.0 for r in one)
    assert summarize(five, stats)["mean_agreement"] < 0.9  # the passes disagree: the teacher follows positions
    top_gold = lambda rows: sum(has_answer(PASSAGES[r["ranked_ids"][0]], a) for r, a in zip(rows, qs.answers))  # noqa: E731
    assert top_gold(five) > top_gold(one)


def test_a_question_costs_one_call_per_window_per_pass_counted_as_labelling_builds_them():
    from components.config import LabelConfig
    from components.labelling import question_cost

    passages = [f"passage {i} " + "word " * 20 for i in range(20)]

    def words(text: str) -> int:  # a stand-in tokenizer
        return len(text.split())

    full = question_cost("q?", passages, LabelConfig(window=20, step=10), words)
    sliding = question_cost("q?", passages, LabelConfig(window=10, step=5), words)
    assert (full.calls, sliding.calls) == (1, 3)
    assert sliding.prompt_tokens > full.prompt_tokens  # overlapping windows send passages twice
    assert full.max_completion_tokens == 6 * 20 + 24 and sliding.max_completion_tokens == 3 * (6 * 10 + 24)
    twice = question_cost("q?", passages, LabelConfig(window=20, step=10, passes=2), words)
    assert twice == type(full)(2, 2 * full.prompt_tokens, 2 * full.max_completion_tokens)
