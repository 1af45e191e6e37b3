from components.distill.pooled_judge import pools


def test_a_pool_is_the_union_of_every_alphas_top_depth_in_order_of_first_appearance():
    base = [["a", "b", "c", "d"], ["x", "y", "z", "w"]]
    half = [["b", "e", "a", "f"], ["x", "y", "z", "w"]]
    trained = [["e", "g", "h", "a"], ["w", "v", "x", "y"]]
    assert pools([base, half, trained], 2) == [["a", "b", "e", "g"], ["x", "y", "w", "v"]]
    # a passage only one α ranks below the depth is not judged: the pool is what some α would show
    assert "c" not in pools([base, half, trained], 2)[0]
    assert pools([], 10) == []


def test_the_weight_average_is_chosen_on_the_judges_targets_and_an_empty_judgement_keeps_the_trained_model(minilm, tmp_path):
    """``choose_average`` with a judge: the judge sees each dev question's pool of every α's top 10,
    and the α is scored on the targets it returns. The judge here ranks by the demo's gold
    judgements (the simulated teacher's first criterion)."""
    from components import encoders
    from components.config import load_config
    from components.corpus import load_collection
    from components.distill.dev import choose_average
    from components.index import FaissIndex

    cfg = load_config(None, [f"run_dir={tmp_path}"])
    collection = load_collection("demo")
    split = collection.split("train")
    corpus = collection.corpus
    index = FaissIndex.build(encoders.encode(minilm, corpus.passages(), cfg.encoder), corpus.ids, cfg.index,
                             encoders.identity(minilm, cfg.encoder), corpus.content_hash())
    trained = str(tmp_path / "trained")
    minilm.save(trained)  # trained == base: every α retrieves the same passages
    dev_ids = split.questions.ids[:6]
    dev_questions = split.questions.texts[:6]
    seen = {}

    def gold_judge(ids, questions, pooled):
        seen.update(zip(ids, pooled))
        ranked = {q: sorted(p, key=lambda d: -split.qrels.get(q, {}).get(d, 0)) for q, p in zip(ids, pooled)}
        return {q: {d: 5 - i for i, d in enumerate(r[:5])} for q, r in ranked.items()}, "gold top 5 of the pool", {"calls_sent": len(ids)}

    kept, details = choose_average(cfg, corpus, "retriever", dev_ids, dev_questions, {}, "unused", 3, gold_judge, index,
                                   trained, str(tmp_path / "scratch"))
    top10, _ = index.search(encoders.encode(minilm, dev_questions, cfg.encoder), 10)
    assert [seen[q] for q in dev_ids] == top10  # identical models: each pool is the base's top 10
    dev = details["dev"]
    assert dev["target"] == "gold top 5 of the pool" and dev["judging"] == {"calls_sent": 6}
    assert dev["alpha"] == 0.0 and len(set(dev["ndcg@10"])) == 1  # equal scores: the smallest α
    assert kept == str(tmp_path / "scratch" / "chosen")

    kept, details = choose_average(cfg, corpus, "retriever", dev_ids, dev_questions, {}, "unused", 3,
                                   lambda ids, qs, pooled: ({}, "nothing usable", {"calls_sent": 6}), index, trained, str(tmp_path / "s2"))
    assert kept == trained and details["dev"]["questions"] == 0 and details["dev"]["judging"] == {"calls_sent": 6}
