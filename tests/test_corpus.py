import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.corpus import Questions, load_collection, load_corpus, load_questions
from components.errors import DataError
from tests.conftest import shared_dataset, write_beir

DOCS = [
    {"_id": "a", "title": "Alpha", "text": "first passage"},
    {"_id": "b", "title": "", "text": "second passage"},
    {"_id": "c", "title": "", "text": "   "},
]
QUERIES = [{"_id": "q1", "text": "which first?", "answers": ["first"]}, {"_id": "q2", "text": "second?", "answers": ["second"]}]


def test_valid_collection_with_counted_drops(tmp_path):
    root = write_beir(tmp_path, DOCS, QUERIES, {"test": [("q1", "a", 1), ("q2", "zzz", 1), ("q9", "a", 1)]})
    col = load_collection(str(root))
    assert col.corpus.ids == ["a", "b"]
    assert col.corpus.passages() == ["Alpha first passage", "second passage"]
    split = col.split("test")
    assert split.questions.ids == ["q1"]
    assert split.qrels == {"q1": {"a": 1}}
    assert col.validation.counts == {
        "documents with empty text": 1,
        "test judgements for unknown documents": 1,
        "test judgements for unknown questions": 1,
    }
    assert col.split("test") is split  # stages ask again and again: the drops are counted once
    assert col.validation.counts["test judgements for unknown documents"] == 1


def test_strict_mode_raises_with_examples(tmp_path):
    root = write_beir(tmp_path, DOCS, QUERIES, {"test": []})
    with pytest.raises(DataError, match=r"1 documents with empty text \(e\.g\. c\)"):
        load_corpus(str(root), on_invalid="error")


def test_duplicate_ids_are_an_error(tmp_path):
    root = write_beir(tmp_path, DOCS + [{"_id": "a", "title": "", "text": "again"}], QUERIES, {"test": []})
    with pytest.raises(DataError, match=r"duplicate ids \(e\.g\. a\)"):
        load_corpus(str(root))
    root2 = write_beir(tmp_path / "q", DOCS, QUERIES + QUERIES[:1], {"test": []})
    with pytest.raises(DataError, match="queries: 1 duplicate ids"):
        load_questions(str(root2))


def test_malformed_records_name_file_and_line(tmp_path):
    root = write_beir(tmp_path, DOCS, QUERIES, {"test": []})
    with open(root / "corpus.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(DataError, match=r"corpus\.jsonl:4: not valid JSON"):
        load_corpus(str(root))
    root2 = write_beir(tmp_path / "x", [{"title": "no id", "text": "t"}], QUERIES, {"test": []})
    with pytest.raises(DataError, match=r"corpus\.jsonl:1: record has no '_id'"):
        load_corpus(str(root2))
    root3 = write_beir(tmp_path / "y", DOCS, [{"_id": "q", "text": "t", "answers": "oops"}], {"test": []})
    with pytest.raises(DataError, match="'answers' must be a list of strings"):
        load_questions(str(root3))


def test_missing_files_and_bad_qrels(tmp_path):
    with pytest.raises(DataError, match="neither corpus.jsonl nor corpus.parquet"):
        load_corpus(str(tmp_path))
    root = write_beir(tmp_path / "c", DOCS, QUERIES, {"test": []})
    col = load_collection(str(root))
    with pytest.raises(DataError, match="no qrels for split 'dev'"):
        col.split("dev")
    (root / "qrels" / "bad.tsv").write_text("qid\tdid\tscore\nq1\ta\t1\n")
    with pytest.raises(DataError, match="missing columns"):
        col.split("bad")
    (root / "qrels" / "bad2.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\thigh\n")
    with pytest.raises(DataError, match="bad2.tsv"):
        col.split("bad2")


def test_parquet_layout(tmp_path):
    pq.write_table(pa.Table.from_pylist(DOCS[:2]), tmp_path / "corpus.parquet")
    pq.write_table(pa.Table.from_pylist(QUERIES), tmp_path / "queries.parquet")
    (tmp_path / "qrels").mkdir()
    pq.write_table(pa.table({"query-id": ["q2"], "corpus-id": ["b"], "score": [1]}), tmp_path / "qrels" / "test.parquet")
    col = load_collection(str(tmp_path))
    assert col.corpus.ids == ["a", "b"]
    assert col.questions.answers == [["first"], ["second"]]
    assert col.split("test").qrels == {"q2": {"b": 1}}


def test_corpus_hash_tracks_content(tmp_path):
    a = load_corpus(str(write_beir(tmp_path / "a", DOCS[:2], QUERIES, {})))
    b = load_corpus(str(write_beir(tmp_path / "b", [DOCS[0], dict(DOCS[1], text="changed")], QUERIES, {})))
    assert a.content_hash() != b.content_hash()
    assert a.content_hash() == load_corpus(str(tmp_path / "a")).content_hash()


def test_demo_collection_ships_with_answers():
    col = load_collection("demo")
    assert 200 <= len(col.corpus) <= 500
    assert col.questions.answers is not None
    train, test = col.split("train"), col.split("test")
    assert len(train.questions) + len(test.questions) == len(col.questions) >= 100
    assert not set(train.questions.ids) & set(test.questions.ids)
    assert not col.validation.counts


def test_cranfield_loads_with_its_two_empty_documents_counted():
    col = load_collection(str(shared_dataset("cranfield")))
    assert len(col.corpus) == 1398
    assert col.validation.counts == {"documents with empty text": 2}
    assert col.questions.answers is None
    assert len(col.split("test").questions) == 71


def test_question_sample_spans_the_collection_and_grows_as_supersets():
    # SQuAD lists its questions article by article: the first 100 come from one article.
    train = load_collection(str(shared_dataset("squad-v1.1-dev"))).split("train")
    article = {d: d.split("-")[0] for docs in train.qrels.values() for d in docs}  # "<article>-<paragraph>"
    articles = lambda qs: {article[d] for q in qs.ids for d in train.qrels[q]}  # noqa: E731
    first = train.questions.subset(train.questions.ids[:100])
    small, large = train.questions.sample(100, seed=0), train.questions.sample(400, seed=0)
    assert len(articles(first)) == 1 and len(articles(small)) >= 20
    assert len(small) == 100 and set(small.ids) < set(large.ids)
    assert small.ids == [q for q in train.questions.ids if q in set(small.ids)]  # collection order kept
    assert train.questions.sample(100, seed=1).ids != small.ids
    assert train.questions.sample(None, seed=0) is train.questions
    assert train.questions.sample(10**6, seed=0) is train.questions


def test_question_sets_join_in_order_and_refuse_a_shared_id():
    real = Questions(ids=["q1", "q2"], texts=["a", "b"], answers=[["x"], ["y"]])
    written = Questions(ids=["gen-p1-0"], texts=["c"], answers=None)
    joined = real + written
    assert joined.ids == ["q1", "q2", "gen-p1-0"] and joined.texts == ["a", "b", "c"]
    assert joined.answers is None  # the generated ones have no answer strings
    assert (real + Questions(ids=["q3"], texts=["d"], answers=[["z"]])).answers == [["x"], ["y"], ["z"]]
    with pytest.raises(ValueError, match="1 question ids in both sets, e.g. 'q2'"):
        real + Questions(ids=["q2"], texts=["b"], answers=None)
