import pytest

from components import report


def _rep(ranker_ci_high: float) -> dict:
    vs = {"ndcg@10": {"delta": -0.05, "ci_low": -0.1, "ci_high": ranker_ci_high}, "top-1": {"delta": 0.02, "ci_low": 0.01, "ci_high": 0.03}}
    return {"dataset": {"name": "x", "split": "test", "questions": 3, "documents": 5}, "accuracy_definition": "success@k",
            "retrievers": {"base-minilm": {"top_k_accuracy": {"1": 0.5}, "ndcg@10": 0.3},
                           "ranker-rerank@10": {"top_k_accuracy": {"1": 0.52}, "ndcg@10": 0.25, "vs_base": vs}}}


def test_the_report_gives_each_difference_with_its_interval_and_bolds_only_clear_ones():
    text = report.markdown(_rep(0.02))
    assert "| ranker-rerank@10 | -0.050 [-0.100, +0.020] | **+0.020 [+0.010, +0.030]** |" in text
    assert "re-ranks *below* the base" not in text


def test_the_report_says_when_the_ranker_is_worse_than_the_base():
    assert "The Stage 1 ranker (ranker-rerank@10) re-ranks *below* the base" in report.markdown(_rep(-0.01))


@pytest.mark.parametrize("low, high, says", [
    (0.01, 0.05, "the ranker reproduces the teacher beyond the base's order."),
    (-0.05, -0.01, "the ranker agrees with the teacher *less* than the base's order does; the test rows above say whether it is worse"),
    (-0.01, 0.02, "no clear difference from the base's order."),
])
def test_the_stage1_check_reads_its_verdict_from_the_paired_interval_as_agreement_with_the_teacher(low, high, says):
    checked = {"questions": 9, "target": "the teacher's top 5", "first_stage": 0.7, "teacher": 0.68,
               "difference": {"delta": (low + high) / 2, "ci_low": low, "ci_high": high}}
    text = report.markdown(_rep(0.02) | {"query_encoders": {"distilled": {"teacher_on_dev": checked}}})
    assert f"the candidate lists ordered by the ranker (Stage 2's target) score nDCG@10 0.680 against the first stage's 0.700 (target: the teacher's top 5), difference {(low + high) / 2:+.3f} " \
           f"[{low:+.3f}, {high:+.3f}]: {says}" in text


def test_the_stage1_check_names_the_fused_target_when_stage2_learns_the_ranker_with_the_first_stage():
    checked = {"questions": 9, "target": "the teacher's top 5", "first_stage": 0.7, "teacher": 0.75, "signal": "the ranker + 1 × the first stage",
               "difference": {"delta": 0.05, "ci_low": 0.01, "ci_high": 0.09}}
    text = report.markdown(_rep(0.02) | {"query_encoders": {"distilled": {"teacher_on_dev": checked}}})
    assert "the candidate lists ordered by the ranker + 1 × the first stage (Stage 2's target) score nDCG@10 0.750" in text
    assert ": the ranker + 1 × the first stage reproduces the teacher beyond the base's order." in text


def test_the_html_report_is_one_self_contained_page_with_intervals_and_charts():
    from components.report_html import page

    rep = _rep(0.02) | {"base": "base-minilm",
                        "per_question": {"ndcg@10": {"base-minilm": [0.2, 0.3, 0.4], "ranker-rerank@10": [0.1, 0.3, 0.5]}},
                        "teacher": {"teacher": "teacher-sim[noise=0]", "complete": 10, "repaired": 2, "unusable": 1, "failed": 0},
                        "losses": {"ranker": [[1, 2.0], [2, 1.5]], "retriever": [[1, 0.9], [2, 0.7]]},
                        "skipped": {"distilled": "out of date: <because>"}}
    html = page(rep)
    assert html.startswith("<!doctype html>") and "<script" not in html and "http" not in html  # nothing to fetch
    assert html.count('src="data:image/png;base64,') == 4  # top-k, Δ distribution, labels, losses
    assert '<span class="sig">+0.020 [+0.010, +0.030]</span>' in html and "-0.050 [-0.100, +0.020]" in html
    assert "out of date: &lt;because&gt;" in html  # escaped
