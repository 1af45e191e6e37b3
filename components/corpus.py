"""Corpus, questions and relevance judgements in the BEIR layout, validated on load.

A collection folder (local or ``s3://``) holds ``corpus.jsonl`` (``_id``, ``title``, ``text``),
``queries.jsonl`` (``_id``, ``text``, optional ``answers`` list) and ``qrels/<split>.tsv``
(``query-id``, ``corpus-id``, ``score`` with a header line). Parquet files with the same columns
(``corpus.parquet``, ``queries.parquet``, ``qrels/<split>.parquet``) are read in their place.

Bad records never surface as a traceback from deep inside: duplicate ids are an error (which copy
is right is unknowable), while empty texts and judgements that point at unknown ids are dropped and
counted in ``ValidationReport`` (or raised, with ``on_invalid="error"``).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable, Literal, Optional

import pyarrow.parquet as pq
import pyarrow.csv as pacsv

from components import storage
from components.errors import DataError

OnInvalid = Literal["error", "warn"]
DEMO = "demo"


def demo_path() -> str:
    """The shipped demo collection (original passages written for this project)."""
    return str(resources.files("components") / "demo")


def resolve_collection_path(path: str) -> str:
    return demo_path() if path == DEMO else path


@dataclass
class ValidationReport:
    """Counts of records dropped on load, by reason; stored in reports so nothing is lost silently."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 5:
            shown.append(example)

    def extend(self, other: "ValidationReport") -> None:
        for reason, n in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n
            shown = self.examples.setdefault(reason, [])
            shown.extend(other.examples[reason][: max(0, 5 - len(shown))])

    def raise_or_keep(self, on_invalid: OnInvalid, what: str) -> None:
        if self.counts and on_invalid == "error":
            raise DataError(f"{what}: {self.describe()}")

    def describe(self) -> str:
        return "; ".join(f"{n} {reason} (e.g. {', '.join(self.examples[reason])})" for reason, n in self.counts.items())


@dataclass
class Corpus:
    ids: list[str]
    titles: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def passages(self) -> list[str]:
        """What encoders and BM25 see: title and text, as BEIR evaluations do."""
        return [f"{t} {x}".strip() if t and not x.startswith(t) else x or t for t, x in zip(self.titles, self.texts)]

    def content_hash(self) -> str:
        """Identity of the corpus content, so indexes built from other data are refused."""
        h = hashlib.sha256()
        for i, t, x in zip(self.ids, self.titles, self.texts):
            h.update(json.dumps([i, t, x], ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()


@dataclass
class Questions:
    ids: list[str]
    texts: list[str]
    answers: Optional[list[list[str]]]  # None when the collection has no answer strings

    def __len__(self) -> int:
        return len(self.ids)

    def __add__(self, other: "Questions") -> "Questions":
        """Both sets, in order; answers only when both have them."""
        clash = set(self.ids) & set(other.ids)
        if clash:
            raise ValueError(f"{len(clash)} question ids in both sets, e.g. {sorted(clash)[0]!r}")
        answers = None if self.answers is None or other.answers is None else self.answers + other.answers
        return Questions(ids=self.ids + other.ids, texts=self.texts + other.texts, answers=answers)

    def subset(self, keep: Iterable[str]) -> "Questions":
        wanted = set(keep)
        idx = [i for i, q in enumerate(self.ids) if q in wanted]
        return Questions(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            answers=None if self.answers is None else [self.answers[i] for i in idx],
        )

    def sample(self, n: Optional[int], seed: int) -> "Questions":
        """``n`` questions drawn at random (seeded), kept in collection order; all when ``n`` is None.

        Collections list their questions document by document (SQuAD article by article), so the
        first ``n`` would cover a handful of documents. The draw is a prefix of a seeded shuffle of
        the sorted ids, so a larger ``n`` gives a superset of a smaller one (labels already paid for
        are reused) and the file's order does not matter.
        """
        if n is None or n >= len(self.ids):
            return self
        order = sorted(set(self.ids))
        random.Random(seed).shuffle(order)
        return self.subset(order[:n])


# Evaluation samples its test questions with a seed of its own, so runs with different training
# seeds are scored on the same questions.
TEST_SAMPLE_SEED = 0


Qrels = dict[str, dict[str, int]]


def _records(uri_base: str, name: str) -> Iterable[tuple[str, dict[str, Any]]]:
    """Yield (location, record) from ``name.jsonl`` or ``name.parquet`` under ``uri_base``."""
    jsonl, parquet = storage.join(uri_base, f"{name}.jsonl"), storage.join(uri_base, f"{name}.parquet")
    if storage.exists(jsonl):
        for lineno, line in enumerate(storage.read_text(jsonl).splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{jsonl}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{jsonl}:{lineno}: expected a JSON object")
            yield f"{jsonl}:{lineno}", rec
    elif storage.exists(parquet):
        fs, path = storage.filesystem(parquet)
        for rowno, rec in enumerate(pq.read_table(path, filesystem=fs).to_pylist(), 1):
            yield f"{parquet}: row {rowno}", rec
    else:
        raise DataError(f"neither {name}.jsonl nor {name}.parquet found in {uri_base}")


def _text_field(rec: dict[str, Any], key: str, where: str) -> str:
    value = rec.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return value.strip()


def _record_id(rec: dict[str, Any], where: str) -> str:
    if "_id" not in rec or rec["_id"] is None or str(rec["_id"]).strip() == "":
        raise DataError(f"{where}: record has no '_id'")
    return str(rec["_id"])


def _check_duplicates(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    dupes = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if dupes:
        raise DataError(f"{what}: {len(dupes)} duplicate ids (e.g. {', '.join(sorted(set(dupes))[:5])})")


def load_corpus(path: str, on_invalid: OnInvalid = "warn", report: Optional[ValidationReport] = None) -> Corpus:
    """Read and validate a corpus; documents with neither title nor text are dropped and counted."""
    base = resolve_collection_path(path)
    report = report if report is not None else ValidationReport()
    local = ValidationReport()
    ids, titles, texts = [], [], []
    for where, rec in _records(base, "corpus"):
        doc_id = _record_id(rec, where)
        title, text = _text_field(rec, "title", where), _text_field(rec, "text", where)
        if not title and not text:
            local.add("documents with empty text", doc_id)
            continue
        ids.append(doc_id)
        titles.append(title)
        texts.append(text)
    _check_duplicates(ids, f"{base}: corpus")
    if not ids:
        raise DataError(f"{base}: corpus has no usable documents")
    local.raise_or_keep(on_invalid, f"{base}: corpus")
    report.extend(local)
    return Corpus(ids, titles, texts)


def load_questions(path: str, on_invalid: OnInvalid = "warn", report: Optional[ValidationReport] = None) -> Questions:
    """Read and validate questions; ``answers`` (a list of strings) is kept when every question has it."""
    base = resolve_collection_path(path)
    report = report if report is not None else ValidationReport()
    local = ValidationReport()
    ids, texts, answers = [], [], []
    any_answers = False
    for where, rec in _records(base, "queries"):
        qid = _record_id(rec, where)
        text = _text_field(rec, "text", where)
        if not text:
            local.add("questions with empty text", qid)
            continue
        ans = rec.get("answers")
        if ans is not None:
            if not isinstance(ans, list) or not all(isinstance(a, str) for a in ans):
                raise DataError(f"{where}: 'answers' must be a list of strings")
            ans = [a for a in ans if a.strip()]
            any_answers = True
        ids.append(qid)
        texts.append(text)
        answers.append(ans or [])
    _check_duplicates(ids, f"{base}: queries")
    local.raise_or_keep(on_invalid, f"{base}: queries")
    report.extend(local)
    return Questions(ids, texts, answers if any_answers else None)


def load_qrels(
    path: str,
    split: str,
    corpus: Corpus,
    questions: Questions,
    on_invalid: OnInvalid = "warn",
    report: Optional[ValidationReport] = None,
) -> Qrels:
    """Read ``qrels/<split>`` and drop (and count) judgements naming unknown questions or documents."""
    base = resolve_collection_path(path)
    report = report if report is not None else ValidationReport()
    local = ValidationReport()
    tsv, parquet = storage.join(base, "qrels", f"{split}.tsv"), storage.join(base, "qrels", f"{split}.parquet")
    if storage.exists(tsv):
        fs, fpath = storage.filesystem(tsv)
        with fs.open_input_stream(fpath) as f:
            try:
                table = pacsv.read_csv(
                    f,
                    parse_options=pacsv.ParseOptions(delimiter="\t"),
                    convert_options=pacsv.ConvertOptions(column_types={"query-id": "string", "corpus-id": "string"}),
                )
            except Exception as e:  # pyarrow raises ArrowInvalid with a row number
                raise DataError(f"{tsv}: cannot parse as a qrels TSV ({e})") from None
        where = tsv
    elif storage.exists(parquet):
        table, where = storage.read_parquet(parquet), parquet
    else:
        raise DataError(f"no qrels for split {split!r}: expected {tsv}")
    missing = {"query-id", "corpus-id", "score"} - set(table.column_names)
    if missing:
        raise DataError(f"{where}: missing columns {sorted(missing)} (header must be query-id, corpus-id, score)")
    known_docs, known_q = set(corpus.ids), set(questions.ids)
    qrels: Qrels = {}
    for qid, did, score in zip(*(table.column(c).to_pylist() for c in ("query-id", "corpus-id", "score"))):
        qid, did = str(qid), str(did)
        try:
            rel = int(score)
        except (TypeError, ValueError):
            raise DataError(f"{where}: score {score!r} for ({qid}, {did}) is not an integer") from None
        if qid not in known_q:
            local.add(f"{split} judgements for unknown questions", qid)
        elif did not in known_docs:
            local.add(f"{split} judgements for unknown documents", f"{qid}->{did}")
        else:
            qrels.setdefault(qid, {})[did] = rel
    local.raise_or_keep(on_invalid, where)
    report.extend(local)
    return qrels


@dataclass
class Split:
    """The questions of one split (those with at least one relevant judgement) and their qrels."""

    name: str
    questions: Questions
    qrels: Qrels


@dataclass
class Collection:
    path: str
    corpus: Corpus
    questions: Questions
    validation: ValidationReport
    _splits: dict[tuple[str, str], Split] = field(default_factory=dict, repr=False, compare=False)

    def split(self, name: str, on_invalid: OnInvalid = "warn") -> Split:
        """The split, read once per collection: its dropped judgements join ``validation`` once
        however many stages ask for it."""
        if (name, on_invalid) not in self._splits:
            qrels = load_qrels(self.path, name, self.corpus, self.questions, on_invalid, self.validation)
            judged = {q for q, docs in qrels.items() if any(r > 0 for r in docs.values())}
            self._splits[(name, on_invalid)] = Split(name, self.questions.subset(judged), qrels)
        return self._splits[(name, on_invalid)]


def load_collection(path: str, on_invalid: OnInvalid = "warn") -> Collection:
    report = ValidationReport()
    corpus = load_corpus(path, on_invalid, report)
    questions = load_questions(path, on_invalid, report)
    return Collection(path=resolve_collection_path(path), corpus=corpus, questions=questions, validation=report)
