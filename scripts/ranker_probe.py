"""Stage 1 probe: does a ranker recipe beat the base as a re-ranker on dev, and when?

The research script behind the "Stage 1 on its own" table of docs/results.md. Not the product: it
trains the pipeline's own ranker (``components.ranker``: backbone, residual prior, pair logits) with
the pipeline's own loss (``components.losses``), outside Ray, on a *perfect* teacher (the train
judgements' grades over the base top-n, ties in the base's order), and re-ranks the base top-n of
held-out train questions (``--dev``, seeded; never the test split) every ``--eval-every`` steps, so
one run draws the whole learning curve with a paired bootstrap CI against the base order.

    python scripts/ranker_probe.py ../shared/datasets/nfcorpus --max-train 1000 --lr 5e-5 --epochs 3
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import tempfile
import time

import ir_measures
import numpy as np
import torch
from ir_measures import nDCG

from components import encoders
from components.config import EncoderConfig
from components.losses import RANKER_LOSSES
from components.ranker import load_ranker, pair_logits, score_pairs, with_prior, zero_head

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("data")
ap.add_argument("--max-train", type=int, default=1000)
ap.add_argument("--dev", type=float, default=0.2, help="fraction of the train questions held out to score on")
ap.add_argument("--max-dev", type=int, default=300)
ap.add_argument("--n", type=int, default=10, help="candidates per list (the base top-n)")
ap.add_argument("--lr", type=float, default=1e-4)
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--batch", type=int, default=4, help="questions per step")
ap.add_argument("--warmup", type=float, default=0.1)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--loss", default="listmle", choices=sorted(RANKER_LOSSES))
ap.add_argument("--top-k", type=int, default=None, help="ListMLE over the first k of each list only")
ap.add_argument("--relevant-only", action="store_true", help="ListMLE over each list's judged passages only (top-k = their count)")
ap.add_argument("--prior-temperature", type=float, default=None, help="residual ranker: base cosine / T + learned correction")
ap.add_argument("--backbone", default="sentence-transformers/all-MiniLM-L6-v2")
ap.add_argument("--eval-every", type=int, default=125)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
if a.relevant_only and a.loss != "listmle":
    ap.error("--relevant-only is top-k ListMLE: use it with --loss listmle")
torch.manual_seed(a.seed)
random.seed(a.seed)
torch.set_num_threads(2)

D = pathlib.Path(a.data)
corpus = [json.loads(line) for line in open(D / "corpus.jsonl")]
texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
ids = [d["_id"] for d in corpus]
queries = {q["_id"]: q["text"] for q in map(json.loads, open(D / "queries.jsonl"))}
judged: dict[str, dict[str, int]] = {}
for line in list(open(D / "qrels" / "train.tsv"))[1:]:
    q, d, s = line.rstrip("\n").split("\t")
    judged.setdefault(q, {})[d] = int(s)

encoder = encoders.load_encoder(EncoderConfig(model="sentence-transformers/all-MiniLM-L6-v2", max_seq_length=a.seq, device="cpu"))
cache = pathlib.Path(tempfile.gettempdir()) / f"stage2_probe-{D.resolve().name}" / f"minilm{a.seq}.npy"
if cache.exists():  # the vectors stage2_probe caches: both probes score the same passages
    P = np.load(cache)
else:
    P = encoder.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, P)

pool = sorted(q for q in judged if q in queries)
random.Random(a.seed).shuffle(pool)
n_dev = int(len(pool) * a.dev)
dev_q, train_q = pool[:n_dev][: a.max_dev], pool[n_dev:][: a.max_train]


def candidates(qids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    Q = encoder.encode([queries[q] for q in qids], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    S = Q @ P.T
    top = np.argsort(-S, axis=1)[:, : a.n]
    return top, np.take_along_axis(S, top, axis=1)


dev_top, dev_cos = candidates(dev_q)
train_top, train_cos = candidates(train_q)
rows = []
for i, q in enumerate(train_q):
    grades = [judged[q].get(ids[j], 0) for j in train_top[i]]
    if max(grades) == 0:
        continue  # no judged passage in the list: the teacher's order would be the base's
    order = sorted(range(a.n), key=lambda r: (-grades[r], r))  # stable: ties keep the base order
    rows.append((queries[q], [texts[train_top[i][r]] for r in order], [float(train_cos[i][r]) for r in order], sum(g > 0 for g in grades)))
print(f"train lists {len(rows)} of {len(train_q)} (others have no judged passage in the top-{a.n}); dev questions {len(dev_q)}", flush=True)


def ndcg_per_question(scores: np.ndarray) -> dict[str, float]:
    run = {q: {ids[dev_top[i][r]]: float(scores[i][r]) for r in range(a.n)} for i, q in enumerate(dev_q)}
    return {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], {q: judged[q] for q in dev_q}, run)}


base = ndcg_per_question(dev_cos)
base_mean = float(np.mean(list(base.values())))
print(f"base (first-stage order) dev nDCG@10 {base_mean:.4f}", flush=True)


def evaluate(model, tokenizer, step: int) -> None:
    model.eval()
    logits = score_pairs(model, tokenizer, [queries[q] for q in dev_q for _ in range(a.n)],
                         [texts[j] for row in dev_top for j in row], a.seq, 64)
    scores = with_prior(logits, dev_cos.reshape(-1), a.prior_temperature).reshape(len(dev_q), a.n)
    per = ndcg_per_question(scores)
    d = np.array([per[q] - base[q] for q in base])
    rng = np.random.default_rng(0)
    boot = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)]
    print(f"step {step}: rerank dev nDCG@10 {np.mean(list(per.values())):.4f}  delta {d.mean():+.4f} "
          f"[{np.percentile(boot, 2.5):+.4f}, {np.percentile(boot, 97.5):+.4f}]", flush=True)
    model.train()


model, tokenizer = load_ranker(a.backbone, device="cpu")
if a.prior_temperature is not None:
    zero_head(model)
settings = argparse.Namespace(listmle_top_k=a.top_k, loss=a.loss)
objective = RANKER_LOSSES[a.loss].from_settings(settings)
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
steps = a.epochs * ((len(rows) + a.batch - 1) // a.batch)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1.0, a.warmup * steps)) * max(0.0, 1 - s / steps))
model.train()
step, t0 = 0, time.time()
if a.prior_temperature is not None:
    evaluate(model, tokenizer, 0)  # must equal the base: the residual starts as its prior
for epoch in range(a.epochs):
    random.shuffle(rows)
    for b in range(0, len(rows), a.batch):
        batch = rows[b : b + a.batch]
        logits = pair_logits(model, tokenizer, [q for q, ps, _, _ in batch for _ in ps], [p for _, ps, _, _ in batch for p in ps], a.seq, 16)
        scores = logits.view(len(batch), a.n)
        if a.prior_temperature is not None:
            scores = scores + torch.tensor([c for _, _, c, _ in batch]) / a.prior_temperature
        mask = torch.ones_like(scores, dtype=torch.bool)
        if a.relevant_only:  # ListMLE's top-k per list: the judged passages, then the rest as one pool
            loss = torch.stack([RANKER_LOSSES[a.loss](top_k=k)(scores[i : i + 1], mask[i : i + 1]) for i, (_, _, _, k) in enumerate(batch)]).mean()
        else:
            loss = objective(scores, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % 25 == 0:
            print(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
        if step % a.eval_every == 0 or step == steps:
            evaluate(model, tokenizer, step)
