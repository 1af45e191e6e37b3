"""Reading a generator's reply: the answer text, and the passages it cites by their ``[n]`` tags.

Small models wrap answers in boilerplate ("Answer: ...", quotes, a trailing full stop) and cite
tags that were never shown; both are cleaned here so the answer can be scored and the citations
map to real passage ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

_TAG = re.compile(r"\[(\d+)\]")
_PREFIX = re.compile(r"^\s*(?:final\s+)?answer\s*[:\-]\s*", re.IGNORECASE)


@dataclass
class ParsedAnswer:
    answer: str
    cited_ids: list[str]


def parse_answer(text: str, passage_ids: Sequence[str]) -> ParsedAnswer:
    """First non-empty line of ``text`` without tags or an "Answer:" prefix; ``cited_ids`` are the
    ids of the passages whose tags appear anywhere in the reply, in order of first mention, out of
    range tags ignored."""
    cited: list[str] = []
    for match in _TAG.finditer(text):
        n = int(match.group(1))
        if 1 <= n <= len(passage_ids) and passage_ids[n - 1] not in cited:
            cited.append(passage_ids[n - 1])
    lines = [line for line in (_TAG.sub("", raw).strip() for raw in text.splitlines()) if line]
    answer = _PREFIX.sub("", lines[0]) if lines else ""
    answer = " ".join(answer.split()).strip(" \"'`*").rstrip(".;,").strip()
    return ParsedAnswer(answer, cited)
