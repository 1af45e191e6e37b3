"""The RAG generator's prompt and the parsing of its replies (pure functions, no model)."""

from components.llm.answers import parse_answer
from components.llm.prompts import answer_messages

IDS = ["d7", "d3", "d9"]


def test_answer_and_citations():
    p = parse_answer("Lake Orvel [2]", IDS)
    assert (p.answer, p.cited_ids) == ("Lake Orvel", ["d3"])


def test_boilerplate_is_stripped_and_out_of_range_tags_ignored():
    p = parse_answer('Answer: "443 square kilometres." [3][1] [7]\nThis is because passage [1] says so.', IDS)
    assert p.answer == "443 square kilometres"
    assert p.cited_ids == ["d9", "d7"]  # order of first mention, [7] shown to nobody


def test_blank_lines_and_no_citation():
    p = parse_answer("\n\n  Tomas Vaeskaerk  \n", IDS)
    assert (p.answer, p.cited_ids) == ("Tomas Vaeskaerk", [])
    assert parse_answer("", IDS).answer == ""
    assert parse_answer("[1]", IDS).answer == "" and parse_answer("[1]", IDS).cited_ids == ["d7"]


def test_prompt_tags_passages_and_closed_book_has_none():
    messages = answer_messages("Where is Harfost?", ["On Gimmerk.", "A  river\nmouth."], max_words=100)
    user = messages[-1]["content"]
    assert "[1] On Gimmerk." in user and "[2] A river mouth." in user and "Where is Harfost?" in user
    closed = answer_messages("Where is Harfost?", [])[-1]["content"]
    assert "Where is Harfost?" in closed and "[1]" not in closed and "Passages" not in closed
