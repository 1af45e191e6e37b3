import pytest

from components.llm.permutation import extract_ids, parse_permutation
from components.llm.prompts import prompt_hash, ranking_messages, truncate_words
from components.llm.windows import apply_window, window_spans, worst


def test_complete_ranking():
    p = parse_permutation("[3] > [1] > [2]", 3)
    assert (p.order, p.status, p.ranked, p.dropped) == ([2, 0, 1], "complete", 3, 0)


def test_chatter_around_the_list_is_ignored():
    assert parse_permutation("Sure! The ranking is: [2] > [3] > [1]. Hope it helps.", 3).order == [1, 2, 0]


def test_out_of_range_and_duplicates_are_dropped_then_missing_appended_in_prompt_order():
    p = parse_permutation("[4] > [9] > [4] > [1] > [0]", 5, min_fraction=0.4)
    assert p.order == [3, 0, 1, 2, 4]
    assert (p.status, p.ranked, p.dropped) == ("repaired", 2, 3)


def test_a_runaway_number_is_dropped_not_a_crash():
    p = parse_permutation("[" + "9" * 5000 + "] > [2] > [1] > [3]", 3)
    assert p.order == [1, 0, 2] and p.status == "repaired" and p.dropped == 1
    bare = parse_permutation("7" * 5000 + " 1 2", 2)
    assert bare.order == [0, 1] and bare.dropped == 1


def test_truncated_list_is_repaired_or_unusable_by_fraction():
    assert parse_permutation("[5] > [2] > [7] > [1] > [", 10).status == "unusable"  # 4 of 10
    p = parse_permutation("[5] > [2] > [7] > [1] > [3] > [", 10)
    assert p.status == "repaired" and p.order[:5] == [4, 1, 6, 0, 2] and p.order[5:] == [3, 5, 7, 8, 9]
    assert parse_permutation("[5] > [2]", 10, min_fraction=0.2).status == "repaired"


def test_garbage_is_unusable_but_still_a_permutation():
    p = parse_permutation("I cannot rank these passages.", 4)
    assert p.status == "unusable" and p.order == [0, 1, 2, 3] and p.ranked == 0


def test_bare_numbers_when_no_brackets():
    assert extract_ids("2 > 1 > 3") == [2, 1, 3]
    assert extract_ids("[2] > 1 > [3]") == [2, 3]  # brackets win when present
    assert parse_permutation("2, 3, 1", 3).order == [1, 2, 0]


def test_single_passage_and_bad_n():
    assert parse_permutation("[1]", 1).status == "complete"
    assert parse_permutation("", 1).order == [0]
    with pytest.raises(ValueError):
        parse_permutation("[1]", 0)


def test_window_spans_bottom_up_cover_everything():
    assert window_spans(5, 20, 10) == [(0, 5)]
    assert window_spans(20, 8, 4) == [(12, 20), (8, 16), (4, 12), (0, 8)]
    assert window_spans(10, 4, 4) == [(6, 10), (2, 6), (0, 2)]
    with pytest.raises(ValueError):
        window_spans(10, 4, 5)


def test_sliding_windows_bubble_the_best_passage_to_the_top():
    # The teacher "knows" relevance = -position value; item 9 (best) starts at the bottom.
    relevance = {i: i for i in range(10)}
    order = list(range(10))
    for span in window_spans(10, 4, 2):
        segment = order[span[0] : span[1]]
        local = sorted(range(len(segment)), key=lambda j: -relevance[segment[j]])
        order = apply_window(order, span, local)
    assert order[0] == 9 and sorted(order) == list(range(10))


def test_apply_window_rejects_non_permutations_and_worst_status():
    with pytest.raises(ValueError):
        apply_window([0, 1, 2], (0, 2), [0, 0])
    assert worst(["complete", "repaired"]) == "repaired"
    assert worst(["complete", "unusable", "repaired"]) == "unusable"


def test_prompt_tags_passages_and_truncates():
    msgs = ranking_messages("Who built it?", ["alpha  beta\ngamma", " ".join(["w"] * 50)], max_words=10)
    user = msgs[-1]["content"]
    assert "[1] alpha beta gamma" in user and "[2] " + " ".join(["w"] * 10) + " …" in user
    assert "Who built it?" in user and "all 2 identifiers" in user
    assert truncate_words("a b c", 5) == "a b c"


def test_prompt_hash_changes_with_order_and_template():
    a = ranking_messages("q", ["x", "y"])
    assert prompt_hash(a) == prompt_hash(ranking_messages("q", ["x", "y"]))
    assert prompt_hash(a) != prompt_hash(ranking_messages("q", ["y", "x"]))
    assert prompt_hash(a) != prompt_hash(ranking_messages("q", ["x", "y"], template="{query} {passages} {n}"))
