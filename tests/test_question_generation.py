"""Corpus-only mode, pure parts: the question prompt, reply parsing, each filter, and sampling."""

from components.llm.prompts import question_messages
from components.llm.questions import QuestionFilter, longest_shared_span, parse_questions

PASSAGE = "Harfost is a town on Gimmerk, built where the river Brarksum meets the sea. About 27,381 people live there."


def test_parsing_strips_markers_and_labels():
    reply = '1. Where is Harfost?\n2) How many people live in Harfost\n\n- "What river meets the sea at Harfost?"\nQuestion: Who lives there?\nQ3: Why?'
    assert parse_questions(reply) == [
        "Where is Harfost?", "How many people live in Harfost", "What river meets the sea at Harfost?", "Who lives there?", "Why?",
    ]
    assert parse_questions("") == [] and parse_questions("  \n \n") == []


def test_longest_shared_span_counts_consecutive_words():
    assert longest_shared_span("where the river Brarksum meets the sea today", PASSAGE) == 7
    assert longest_shared_span("which river flows into the sea", PASSAGE) == 2  # "the sea"
    assert longest_shared_span("", PASSAGE) == 0


def test_each_filter_drops_and_counts():
    f = QuestionFilter(min_words=3, max_words=12, max_copied_words=6)
    kept = [q for q in [
        "Where is Harfost?",                                              # kept
        "Harfost?",                                                       # too short
        "what " * 13,                                                     # too long
        "where is  HARFOST",                                              # duplicate after normalization
        "is Harfost built where the river Brarksum meets the sea",         # copies 8 words
        "",                                                               # empty
        "How many people live in the town of Harfost?",                   # kept
    ] if f.keep(q, PASSAGE)]
    assert kept == ["Where is Harfost?", "How many people live in the town of Harfost?"]
    assert f.dropped == {"too_short": 1, "too_long": 1, "duplicate": 1, "copies_passage": 1, "empty": 1}


def test_prompt_shows_examples_then_the_passage():
    messages = question_messages(PASSAGE, 2, [("A passage.", "an example question")])
    user = messages[-1]["content"]
    assert user.index("an example question") < user.index("Harfost is a town") and "Write 2 different" in user
    assert "Examples" not in question_messages(PASSAGE, 1)[-1]["content"]


def test_sampling_is_seeded_and_stratified_by_document():
    from components.question_gen import sample_passages

    ids = [f"long-{i}" for i in range(50)] + ["a-0", "a-1", "b-0", "c-0"]
    docs = ["long"] * 50 + ["a", "a", "b", "c"]
    picked = sample_passages(ids, docs, 5, seed=1)
    assert picked == sample_passages(ids, docs, 5, seed=1) != sample_passages(ids, docs, 5, seed=2)
    # the first round takes one passage of each document: the 50-passage document gets 1 of the first 4
    assert sum(p.startswith("long") for p in picked[:4]) == 1 and {"b-0", "c-0"} <= set(picked)
    assert len(sample_passages(ids, docs, 1000, seed=0)) == len(ids)
    assert len(set(sample_passages(["x", "y"], ["", ""], 2, 0))) == 2  # no title: each passage its own document
