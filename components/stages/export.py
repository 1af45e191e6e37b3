"""Export a finished run for people who never run idistill: the distilled retriever as a
sentence-transformers model, the ranker as a ``CrossEncoder``, each with a model card written by
sentence-transformers' own card machinery, and the paid labels as a Hugging Face dataset
(parquet) with a dataset card. Teachers drift between snapshots; the labels are the asset, so
their card carries what a reader needs to trust or reproduce them.

Only models that are the run's current ones are exported (``lineage``); the card's metrics are
the run's own test-split evaluation, recomputed by ``RunTestEvaluator`` (the code behind
``report.json``), with the paired difference from the base encoder and its bootstrap CI.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Optional

from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from components import console, encoders, hybrid_student, run_models, storage
from components.corpus import TEST_SAMPLE_SEED
from components.errors import DataError
from components.llm import prompts
from components.run import Run
from components.run_layout import labels_uri, ranker_uri, retriever_uri, stage_model
from components.stages import lineage
from components.stages.evaluation import compare_to, evaluate_retriever

CITATION = """@article{li2024intermediate,
  title   = {Intermediate Distillation: Data-Efficient Distillation from Black-Box LLMs for Information Retrieval},
  author  = {Li, Zizhong and Zhang, Haopeng and Zhang, Jiawei},
  journal = {arXiv preprint arXiv:2406.12169},
  year    = {2024}
}"""
TAGS = ["idistill", "knowledge-distillation", "listwise-llm-teacher"]


class RunTestEvaluator(SentenceEvaluator):
    """The run's test-split evaluation as a sentence-transformers evaluator: the model's query
    vectors searched in the run's base index (or in ``index_uri``, the model's own, where Stage 2
    trained its passage side too) and scored by idistill's own metrics (top-k accuracy,
    nDCG@10, MRR@10, recall@k), with the paired difference from the base encoder's (mean and
    paired bootstrap 95% CI over the same questions)."""

    def __init__(self, run: Run, document_fingerprint: str, index_uri: Optional[str] = None) -> None:
        super().__init__()
        cfg = run.cfg
        self.run, self.fingerprint = run, document_fingerprint
        split = run.collection.split(cfg.data.test_split, cfg.data.on_invalid)
        self.questions, self.qrels = split.questions.sample(cfg.data.max_test_questions, TEST_SAMPLE_SEED), split.qrels
        self.passages = dict(zip(run.collection.corpus.ids, run.collection.corpus.passages()))
        self.base = run_models.load_base(cfg, run.collection.corpus)
        self.index = run_models.passage_index(cfg, self.base, index_uri)
        self.name = f"{run.collection.path.rstrip('/').split('/')[-1]}-{split.name}"
        self.primary_metric = "ndcg@10"

    @property
    def description(self) -> str:
        return "Retrieval over the run's corpus (idistill's test-split evaluation, paired with the base encoder)"

    def __call__(self, model: Any, output_path: Optional[str] = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        from components.retrieval import DenseRetriever

        cfg = self.run.cfg
        trained = DenseRetriever("model", model, cfg.encoder, self.index, self.fingerprint)
        result, per_question = evaluate_retriever(trained, self.passages, self.questions, self.qrels, cfg)
        _, base_per_question = evaluate_retriever(self.base, self.passages, self.questions, self.qrels, cfg)
        metrics = {**{f"top-{k}": v for k, v in result["top_k_accuracy"].items()},
                   **{k: v for k, v in result.items() if k != "top_k_accuracy"}}
        for metric, d in compare_to(base_per_question, per_question).items():
            if metric in ("ndcg@10", "top-1", "top-5", "top-20"):
                metrics |= {f"Δ {metric} vs base": d["delta"], f"Δ {metric} CI low": d["ci_low"], f"Δ {metric} CI high": d["ci_high"]}
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


def _hub_id(model: str) -> Optional[str]:
    """The base model's hub id when it is one (the packaged MiniLM is the hub's all-MiniLM-L6-v2)."""
    return model if model.count("/") == 1 and not Path(model).exists() else None


def _teacher(run: Run) -> dict[str, Any]:
    summary = storage.join(labels_uri(run.cfg), "summary.json")
    return storage.read_json(summary) if storage.exists(summary) else {}


def _loads_with_this_package(card: Any) -> None:
    """Make the card's usage snippet load the model as it must be loaded: a hybrid student's
    modules.json names idistill's ``StaticBranch``, so ``SentenceTransformer(id)`` without
    ``trust_remote_code=True`` (and without this package installed) refuses it, and the library's
    snippet says neither."""
    snippet = card.generate_usage_snippet

    def generate() -> str:
        return re.sub(r'(SentenceTransformer\("[^"]*")\)', r"\1, trust_remote_code=True)  # needs `pip install idistill` (its StaticBranch)",
                      snippet(), count=1)

    card.generate_usage_snippet = generate


def export_retriever(run: Run, out: str, scratch: str) -> str:
    cfg = run.cfg
    manifest = storage.read_json(storage.join(retriever_uri(cfg), "manifest.json"))
    local_model = Path(storage.local_dir(stage_model(retriever_uri(cfg), manifest), scratch))
    # The base model's card came along through training; without it the library writes a new one.
    (local_model / "README.md").unlink(missing_ok=True)
    model = encoders.open_model(str(local_model))
    teacher = _teacher(run)
    card = model.model_card_data
    card.model_name = f"{cfg.encoder.model.split('/')[-1]} distilled from {teacher.get('teacher', 'an LLM')}'s rankings (idistill)"
    card.base_model = _hub_id(cfg.encoder.model)
    card.add_tags(TAGS)
    card.citations = {"Intermediate Distillation": CITATION}
    card.train_datasets = [{
        "name": f"{run.collection.path.rstrip('/').split('/')[-1]} {cfg.data.train_split} questions",
        "size": manifest.get("questions"),
        "columns": ["question", "candidate passages (frozen vectors)", "ranker scores"],
        "loss": {"fullname": f"components.losses.{cfg.train.retriever.loss}",
                 "config_code": "```json\n" + json.dumps(cfg.train.retriever.model_dump(mode="json"), indent=2) + "\n```"},
    }]
    card.all_hyperparameters = {
        "teacher": teacher.get("teacher"), "teacher backend": teacher.get("backend"),
        "questions labelled by the teacher": teacher.get("questions"),
        "labels complete / repaired / unusable / failed": "/".join(str(teacher.get(s)) for s in ("complete", "repaired", "unusable", "failed")),
        "questions in Stage 2 (labelled by the LLM)": f"{manifest.get('questions')} ({manifest.get('llm_labelled')})",
        "weight average with the base (α, chosen on dev)": (manifest.get("dev") or {}).get("alpha"),
        **{f"stage 2 {k}": v for k, v in cfg.train.retriever.model_dump(mode="json").items()},
    }
    RunTestEvaluator(run, manifest["document_encoder"]["fingerprint"], manifest.get("index"))(model)
    if hybrid_student.is_hybrid(str(local_model)):
        _loads_with_this_package(card)
    target = storage.join(out, "retriever")
    local = tempfile.mkdtemp(dir=scratch)
    model.save(local)  # writes README.md from the card data
    storage.put_dir(local, target)
    return target


def export_ranker(run: Run, out: str, scratch: str) -> str:
    from sentence_transformers import CrossEncoder

    cfg = run.cfg
    manifest = storage.read_json(storage.join(ranker_uri(cfg), "manifest.json"))
    model = CrossEncoder(storage.local_dir(stage_model(ranker_uri(cfg), manifest), scratch), device="cpu")
    teacher = _teacher(run)
    card = model.model_card_data
    card.model_name = f"Cross-encoder ranker taught by {teacher.get('teacher', 'an LLM')}'s listwise rankings (idistill Stage 1)"
    card.base_model = _hub_id(cfg.train.ranker.backbone)
    card.add_tags(TAGS)
    card.citations = {"Intermediate Distillation": CITATION}
    card.all_hyperparameters = {
        "teacher": teacher.get("teacher"), "labels used": manifest.get("labels_used"),
        "labels held out (Stage 2's dev questions)": manifest.get("labels_held_out"),
        "residual prior temperature (add cosine / T of the base retriever to the logit)": cfg.train.ranker.prior_temperature,
        **{f"stage 1 {k}": v for k, v in cfg.train.ranker.model_dump(mode="json").items()},
    }
    target = storage.join(out, "ranker")
    local = tempfile.mkdtemp(dir=scratch)
    model.save(local)
    storage.put_dir(local, target)
    return target


def export_labels(run: Run, out: str, scratch: str) -> str:
    """The labels as parquet (question, candidates with their texts, the teacher's order and the
    label's status) and a dataset card with their provenance."""
    import datasets
    from huggingface_hub import DatasetCard, DatasetCardData

    cfg = run.cfg
    table = storage.join(labels_uri(cfg), "labels.parquet")
    if not storage.exists(table):
        raise DataError(f"{cfg.run_dir} has no labels to export")
    passages = dict(zip(run.collection.corpus.ids, run.collection.corpus.passages()))
    rows = [{"question_id": r["question_id"], "question": r["question"], "candidate_ids": list(r["candidate_ids"]),
             "candidate_texts": [passages[d] for d in r["candidate_ids"]], "ranked_ids": list(r["ranked_ids"]),
             "permutation": list(r["permutation"]), "status": r["status"], "passes": r["passes"],
             "agreement": r["agreement"], "teacher_reply": r["raw"]}
            for r in storage.read_parquet(table).to_pylist()]
    local = Path(tempfile.mkdtemp(dir=scratch))
    (local / "data").mkdir()
    datasets.Dataset.from_list(rows).to_parquet(str(local / "data" / "train.parquet"))
    teacher = _teacher(run)
    template = (cfg.labels.system_prompt or prompts.DEFAULT_SYSTEM) + "\n" + (cfg.labels.prompt_template or prompts.DEFAULT_TEMPLATE)
    provenance = {
        "teacher model (as served)": teacher.get("teacher"), "endpoint kind": teacher.get("endpoint_kind", teacher.get("backend")),
        "decoding": f"temperature {cfg.labels.temperature}, max_tokens 6 × list width + 24",
        "prompt template sha256": hashlib.sha256(template.encode()).hexdigest(),
        "window / step": f"{cfg.labels.window} / {cfg.labels.step}", "passes per list": cfg.labels.passes,
        "candidates": f"top-{cfg.labels.num_candidates} of {cfg.encoder.model}",
        "labelled at": teacher.get("labelled_at", "not recorded"),
        "counts": {s: teacher.get(s) for s in ("questions", "complete", "repaired", "unusable", "failed", "calls_sent")},
    }
    data = DatasetCardData(pretty_name=f"{teacher.get('teacher', 'LLM')} listwise rankings", tags=TAGS,
                           configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train.parquet"}]}])
    lines = "\n".join(f"- **{k}**: {v}" for k, v in provenance.items())
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n# Listwise LLM rankings from an idistill run\n\n"
                       "Each row is one training question, the base retriever's candidate passages (ids and texts), "
                       "and the teacher LLM's ranking of them (`ranked_ids`, best first; `permutation` indexes "
                       "`candidate_ids`), with the label's status (`complete`, `repaired`: missing ids appended in "
                       "retriever order, `unusable`, `failed`), the shuffled passes aggregated (Borda) and their "
                       "agreement (Kendall's τ), and the teacher's raw reply.\n\n## Provenance\n\n" + lines + "\n")
    card.save(str(local / "README.md"))
    target = storage.join(out, "labels")
    storage.put_dir(str(local), target)
    return target


def export(run: Run, out: str, push_to_hub: Optional[str] = None) -> dict[str, str]:
    """Export the run's current retriever and ranker and its labels under ``out``; say what was
    left out and why. ``push_to_hub``: also push them to ``REPO``, ``REPO-ranker`` and the dataset
    ``REPO-labels`` with the libraries' own push (needs a token and network)."""
    done: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, check, write in (("retriever", lambda: lineage.query_encoder_problem(run, "retriever"), export_retriever),
                                   ("ranker", lambda: lineage.ranker_problem(run), export_ranker),
                                   ("labels", lambda: None, export_labels)):
            problem = check()
            if problem:
                console.say(f"export: {name} not exported: {problem}")
                continue
            done[name] = write(run, out, scratch)
            console.say(f"export: {name} → {done[name]}")
    if push_to_hub:
        _push(done, push_to_hub)
    return done


def _push(done: dict[str, str], repo: str) -> None:
    import datasets
    from sentence_transformers import CrossEncoder

    if "retriever" in done:
        encoders.open_model(done["retriever"]).push_to_hub(repo)
    if "ranker" in done:
        CrossEncoder(done["ranker"]).push_to_hub(f"{repo}-ranker")
    if "labels" in done:
        datasets.load_dataset(done["labels"]).push_to_hub(f"{repo}-labels")
