"""Stage 2's lists and the Run's stage memo, without Ray."""

import numpy as np
import pytest

from components.config import load_config
from components.distill.lists import GOLD, HARD_NEGATIVE, direct_lists, supervised_lists, teacher_target, teacher_top
from components.run import Run, stage

LABELS = [
    {"question_id": "q1", "question": "a?", "ranked_ids": ["d3", "d1", "d2"], "status": "complete"},
    {"question_id": "q2", "question": "b?", "ranked_ids": ["d2", "d1"], "status": "repaired"},
    {"question_id": "q3", "question": "c?", "ranked_ids": ["d1", "d2"], "status": "unusable"},
]


def test_direct_lists_take_the_llm_order_of_usable_labels_as_scores():
    lists = direct_lists(LABELS)
    assert lists.question_ids == ["q1", "q2"] and lists.candidates == [["d3", "d1", "d2"], ["d2", "d1"]]
    assert [t.tolist() for t in lists.teacher] == [[0.0, -1.0, -2.0], [0.0, -1.0]]
    assert lists.dev_targets == teacher_top(LABELS) == {"q1": {"d3": 1}, "q2": {"d2": 1}}
    assert lists.dev_target == teacher_target(1) == "the teacher LLM's first passage"
    graded = direct_lists(LABELS, dev_top_k=2)
    assert graded.dev_targets["q1"] == dict(zip(LABELS[0]["ranked_ids"][:2], [2, 1]))  # first passage gains most
    assert graded.teacher_inputs == lists.teacher_inputs  # the dev target is not what it learns from
    assert direct_lists([LABELS[2]]) is None
    assert direct_lists(LABELS).teacher_inputs == lists.teacher_inputs  # the same lists resume the same stage


def test_supervised_lists_keep_questions_with_a_judged_candidate_and_make_the_rest_hard_negatives():
    cands = {"question_id": ["q1", "q2"], "question": ["a?", "b?"], "candidate_ids": [["d1", "d2", "d3"], ["d4", "d5"]]}
    lists = supervised_lists(cands, {"q1": {"d2"}, "q2": {"d9"}})
    assert lists.question_ids == ["q1"] and lists.dev_target == GOLD
    np.testing.assert_array_equal(lists.teacher[0], np.array([HARD_NEGATIVE, 0.0, HARD_NEGATIVE], np.float32))
    assert supervised_lists(cands, {"q2": {"d9"}}) is None


def test_a_stage_runs_once_per_run_and_again_for_a_new_run():
    calls = []

    @stage
    def counted(run: Run, name: str = "x") -> str:
        calls.append(name)
        return f"{run.cfg.run_dir}:{name}"

    run = Run(load_config(None, ["run_dir=/tmp/a"]))
    assert counted(run) == counted(run) == "/tmp/a:x"
    assert counted(run, "y") == "/tmp/a:y"
    assert calls == ["x", "y"]
    counted(Run(run.cfg))  # a new run checks again: no state outlives its Run
    assert calls == ["x", "y", "x"]


def test_negative_bank_is_seeded_and_takes_a_small_corpus_whole():
    from components.distill.candidates import negative_bank

    ids = [f"d{i}" for i in range(50)]
    assert negative_bank(ids, 100, 0) == ids
    bank = negative_bank(ids, 10, 3)
    assert len(set(bank)) == 10 and set(bank) <= set(ids)
    assert negative_bank(list(reversed(ids)), 10, 3) == bank  # whatever the order it is given
    assert negative_bank(ids, 10, 4) != bank


def test_stage2_pool_holds_every_labelled_question_plus_the_extra_ones():
    from components.stages.candidates import training_questions

    run = Run(load_config(None, ["labels.max_questions=10", "train.retriever.extra_questions=5"]))
    labelled, pool = training_questions(run), training_questions(run, "stage2")
    assert len(labelled) == 10 and len(pool) == 15 and set(labelled.ids) <= set(pool.ids)
    everything = Run(load_config(None, ["labels.max_questions=10", "train.retriever.extra_questions=null"]), run.collection)
    assert len(training_questions(everything, "stage2")) == len(run.collection.split("train").questions)


def test_the_dev_split_holds_out_whole_documents_by_what_each_question_is_about():
    from components.corpus import Corpus
    from components.distill.dev import hold_out

    corpus = Corpus([f"d{i}" for i in range(8)], ["A", "A", "B", "B", "C", "C", "D", "D"], ["x"] * 8)
    about = {f"q{i}": {f"d{i}"} for i in range(8)} | {"extra": {"d1"}, "extra2": {"d0"}}
    labelled = [f"q{i}" for i in range(8)]
    held = hold_out(corpus, about, labelled, 0.25, seed=0)
    assert len(held.questions) == 2 and held.questions <= set(labelled)
    (title,) = held.dev_groups  # one title's two documents: both its questions
    assert {corpus.titles[int(q[1:])] for q in held.questions} == {title}
    # Stage 2's extra questions about a dev document are held out too, others are not.
    assert held.excludes("extra") == held.excludes("extra2") == (title == "A")
    assert not any(held.excludes(q) for q in labelled if q not in held.questions)
    assert hold_out(corpus, about, labelled[::-1], 0.25, seed=0) == held  # whatever the order


def test_rerank_on_dev_compares_the_teachers_order_with_the_first_stages_on_dev_questions_only():
    from components.distill.dev import rerank_on_dev
    from components.distill.lists import Lists

    lists = Lists(["q1", "q2", "q3"], ["a?", "b?", "c?"], [["d1", "d2"], ["d3", "d4"], ["d5", "d6"]],
                  [np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0])], "h",
                  {"q1": {"d2": 1}, "q2": {"d3": 1}, "q3": {"d5": 1}}, "t")
    checked = rerank_on_dev(lists, {"q1", "q2"})
    assert checked["questions"] == 2
    # q1: the teacher lifts d2 to the top (1.0 vs 1/log2(3)); q2: it pushes d3 down (the reverse)
    assert checked["teacher"] == pytest.approx(checked["first_stage"])
    # per question +0.37 and −0.37: the paired interval spans both
    assert checked["difference"]["delta"] == pytest.approx(0.0)
    assert checked["difference"]["ci_low"] < 0 < checked["difference"]["ci_high"]
    assert rerank_on_dev(lists, {"q1"})["teacher"] > rerank_on_dev(lists, {"q1"})["first_stage"]
    assert rerank_on_dev(lists, set()) is None


def test_llm_labelled_lists_learn_the_llms_permutation_at_the_rankers_spread():
    from components.distill.lists import teacher_where_labelled
    from components.distill.spread import mean_spread

    ranker = [np.array([0.5, 2.0, -1.0], np.float32), np.array([1.0, 0.0, 3.0], np.float32), np.array([0.0, 1.0, 2.0], np.float32)]
    labels = [{"question_id": "q1", "status": "complete", "ranked_ids": ["c", "a", "b"]},
              {"question_id": "q2", "status": "unusable", "ranked_ids": ["d", "e", "f"]},  # not usable: the ranker's
              {"question_id": "q3", "status": "complete", "ranked_ids": ["g", "h"]}]  # not the whole list: the ranker's
    scores, replaced = teacher_where_labelled(["q1", "q2", "q3"], [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]],
                                              ranker, labels, spread=2.6)
    assert replaced == 1
    assert np.argsort(-scores[0]).tolist() == [2, 0, 1]  # c > a > b, in candidate order
    assert mean_spread([scores[0]]) == pytest.approx(2.6)
    assert np.array_equal(scores[1], ranker[1]) and np.array_equal(scores[2], ranker[2])
    _, kept = teacher_where_labelled(["q1"], [["a", "b", "c"]], ranker[:1], labels, spread=2.6, keep_ranker={"q1"})
    assert kept == 0  # a held-out dev question keeps the ranker's scores, on which the ranker is checked
    unscaled, _ = teacher_where_labelled(["q1"], [["a", "b", "c"]], ranker[:1], labels, spread=None)
    assert mean_spread(unscaled) == pytest.approx(mean_spread(ranker[:1]))  # no spread set: the ranker lists' own
