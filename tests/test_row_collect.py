import numpy as np
import pytest

from components.row_collect import collect_rows


def test_rows_come_back_in_row_order_whatever_order_the_actors_finish():
    batches = [{"row": np.array([2, 0]), "score": np.array([0.2, 0.0])}, {"row": np.array([1]), "score": np.array([0.1])}]
    counted = []
    out = collect_rows(batches, 3, "score", "ranker scoring", progress=counted.append)
    assert out.tolist() == pytest.approx([0.0, 0.1, 0.2]) and counted == [2, 1]
    vectors = collect_rows([{"row": np.array([1, 0]), "embedding": np.eye(2)}], 2, "embedding", "embedding", width=2)
    assert vectors.tolist() == [[0, 1], [1, 0]]


def test_a_lost_or_repeated_row_is_an_error_naming_the_job():
    with pytest.raises(RuntimeError, match=r"ranker scoring: 1 of 3 rows never came back \(e\.g\. row 1\)"):
        collect_rows([{"row": np.array([0, 2]), "score": np.zeros(2)}], 3, "score", "ranker scoring")
    with pytest.raises(RuntimeError, match="embedding: row 0 came back twice"):
        collect_rows([{"row": np.array([0]), "embedding": np.zeros((1, 2))}] * 2, 2, "embedding", "embedding", width=2)
