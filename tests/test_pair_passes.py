"""Pairs scored in length-sorted passes give the logits of one padded pass, in the pairs' order,
and train under DDP."""

import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp

from components.config import DEFAULT_MODEL
from components.ranker import load_ranker, padded_passes, pair_logits

QUESTIONS = ["diet and asthma", "arsenic", "does cholesterol feed breast cancer cells in women over fifty"]
PASSAGES = [
    "Asthma and eczema respond to diet, a trial of four hundred children found over two winters.",
    "Arsenic in rice.",
    "Cholesterol feeds breast cancer cells.",
]


def _pairs() -> tuple[list[str], list[str]]:
    return [q for q in QUESTIONS for _ in PASSAGES], [p for _ in QUESTIONS for p in PASSAGES]


def test_passes_are_sorted_by_length_and_padded_each_to_its_own_longest():
    _, tokenizer = load_ranker(DEFAULT_MODEL, device="cpu")
    questions, passages = _pairs()
    passes, order = padded_passes(tokenizer, questions, passages, 64, 4)
    lengths = [int(m.sum()) for p in passes for m in p["attention_mask"]]
    assert sorted(order.tolist()) == list(range(9)) and lengths == sorted(lengths)
    assert [p["input_ids"].shape[1] for p in passes] == [max(lengths[i : i + 4]) for i in range(0, 9, 4)]


def test_logits_in_passes_equal_one_padded_pass_and_carry_gradients():
    model, tokenizer = load_ranker(DEFAULT_MODEL, device="cpu")
    questions, passages = _pairs()
    features = tokenizer(questions, passages, truncation="only_second", max_length=64, padding=True, return_tensors="pt")
    with torch.no_grad():
        whole = model(**features).logits.reshape(-1)
    logits = pair_logits(model, tokenizer, questions, passages, 64, 2)
    assert torch.allclose(logits, whole, atol=1e-4)
    logits.sum().backward()
    assert model.classifier.weight.grad is not None


def _ddp_worker(rank: int, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model, tokenizer = load_ranker(DEFAULT_MODEL, device="cpu")
    ddp = torch.nn.parallel.DistributedDataParallel(model.train(), find_unused_parameters=True)
    questions, passages = _pairs()
    mine = slice(rank * 4, rank * 4 + 5)  # different pairs on each worker, three passes each
    pair_logits(ddp, tokenizer, questions[mine], passages[mine], 64, 2).square().sum().backward()
    np.save(os.path.join(out, f"grad{rank}.npy"), model.classifier.weight.grad.numpy())
    torch.distributed.destroy_process_group()


def test_passes_train_under_ddp_with_gradients_averaged_across_workers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=2)
    grads = [np.load(tmp_path / f"grad{r}.npy") for r in range(2)]
    assert np.abs(grads[0]).sum() > 0 and np.allclose(grads[0], grads[1])  # averaged across workers
