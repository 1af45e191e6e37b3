"""The run report: ``report.json`` (machine-readable), ``report.md`` (tables), ``report.html`` (one
page to look at, ``report_html``), ``topk.png`` (retrieval curves), and once the RAG evaluation
has run, its section and ``rag.png``."""

from __future__ import annotations

import io
from typing import Any

from components import storage

TABLE_METRICS = ("ndcg@10", "mrr@10", "recall@20", "recall@100")


def markdown(report: dict[str, Any]) -> str:
    """A table per report: one row per retriever, top-k accuracy then rank metrics."""
    retrievers: dict[str, dict[str, Any]] = report["retrievers"]
    data = report["dataset"]
    lines = [
        f"# idistill report — {data['name']}",
        "",
        f"Split `{data['split']}`: {data['questions']} questions over {data['documents']} documents. "
        f"Top-k accuracy is {report['accuracy_definition']}.",
        "",
        *metric_tables(retrievers),
    ]
    compared = {name: r["vs_base"] for name, r in retrievers.items() if r.get("vs_base")}
    if compared:
        worse = [n for n, vs in compared.items() if n.startswith("ranker") and vs["ndcg@10"]["ci_high"] < 0]
        if worse:
            lines += ["", f"The Stage 1 ranker ({worse[0]}) re-ranks *below* the base retriever here: Stage 2 learnt "
                      "from a teacher worse than its student, so do not expect the distilled retriever to gain."]
    teacher = report.get("teacher")
    if teacher:
        used = f", {teacher['labels_used']} used for training" if "labels_used" in teacher else ""
        if teacher.get("labels_held_out"):
            used += f" ({teacher['labels_held_out']} held out as Stage 2's dev questions)"
        source = "LLM-written" if teacher.get("training_questions") == "generated" else "real"
        lines += ["", f"Teacher: {teacher['teacher']} ({teacher['backend']}); {teacher['questions']} {source} training questions "
                  f"labelled: {teacher['complete']} complete, {teacher['repaired']} repaired, {teacher['unusable']} unusable, "
                  f"{teacher['failed']} failed{used}."]
        if teacher.get("passes"):
            lines[-1] += (f" Each list was ranked in {teacher['passes']} shuffled passes aggregated by Borda count "
                          f"(mean agreement, Kendall's τ: {teacher['mean_agreement']}).")
        gen = teacher.get("generation")
        if gen:
            written = "Training" if teacher.get("training_questions") == "generated" else "Stage 2's extra"
            lines += ["", f"{written} questions written by {gen['teacher']}: {gen['kept']} kept of {gen['asked']} asked; "
                      "dropped: " + (", ".join(f"{n} {why}" for why, n in gen["dropped"].items()) or "none") + "."]
    for name, trained in (report.get("query_encoders") or {}).items():
        checked = trained.get("teacher_on_dev")
        if checked and name == "distilled":
            target = checked.get("target") or (trained.get("dev") or {}).get("target", "the teacher LLM's first passage")
            signal = checked.get("signal", "the ranker")  # reports before first_stage_weight: the ranker alone
            lines += ["", f"Stage 1 on {checked['questions']} dev questions it never trained on: the candidate lists ordered "
                      f"by {signal} (Stage 2's target) score nDCG@10 {checked['teacher']:.3f} against the first stage's "
                      f"{checked['first_stage']:.3f} (target: {target}){agreement(checked.get('difference'), signal)}"]
        dev = trained.get("dev")
        if dev and dev.get("alphas"):
            curve = ", ".join(f"α={a:g}: {v:.3f}" for a, v in zip(dev["alphas"], dev["ndcg@10"]))
            labelled = trained.get("llm_labelled")
            of_which = f" ({labelled} of them labelled by the LLM, the rest by the ranker alone)" if labelled is not None and labelled != trained["questions"] else ""
            lines += ["", f"{name}: trained on {trained['questions']} questions{of_which}; kept (1-α)·base + α·trained with "
                      f"α={dev['alpha']:g}, chosen by nDCG@10 of {dev['target']} on {dev['questions']} held-out "
                      f"training questions about {dev.get('documents', '?')} documents no training question is about ({curve})."]
            judging = dev.get("judging")
            if judging:
                lines += [f"The teacher ({judging['teacher']}) judged pools of {judging['mean_pool']} passages on average for "
                          f"{judging['judged']} of {judging['of']} dev questions: {judging['calls_sent']} calls sent, "
                          f"{judging['calls_cached']} cached."]
    for name, why in (report.get("skipped") or {}).items():
        lines += ["", f"Not evaluated: {name} ({why})."]
    if report.get("validation"):
        lines += ["", "Records dropped on load: " + ", ".join(f"{n} {why}" for why, n in report["validation"].items())]
    if report.get("rag"):
        lines += ["", rag_markdown(report["rag"])]
    return "\n".join(lines) + "\n"


def agreement(difference: dict[str, float] | None, signal: str = "the ranker") -> str:
    """The Stage 1 check's verdict, from its paired interval (reports written before it had one
    say only which is higher). It is agreement with the teacher on held-out lists, not quality."""
    if not difference:
        return "."
    if difference["ci_low"] > 0:
        verdict = f"{signal} reproduces the teacher beyond the base's order"
    elif difference["ci_high"] < 0:
        verdict = (f"{signal} agrees with the teacher *less* than the base's order does; the test rows above say whether "
                   "it is worse (a teacher whose order below its best passages follows the base's own signal favours the base here)")
    else:
        verdict = "no clear difference from the base's order"
    return f", difference {interval(difference)}: {verdict}."


def metric_tables(retrievers: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: the metrics, one row per retriever, then each one's paired difference from
    the base retriever where it has one."""
    ks = sorted({int(k) for r in retrievers.values() for k in r["top_k_accuracy"]})
    rank_cols = [m for m in TABLE_METRICS if any(m in r for r in retrievers.values())]
    lines = ["| retriever | " + " | ".join(f"top-{k}" for k in ks) + "".join(f" | {m}" for m in rank_cols) + " |",
             "|---|" + "---:|" * (len(ks) + len(rank_cols))]
    for name, r in retrievers.items():
        cells = [f"{r['top_k_accuracy'][str(k)]:.3f}" for k in ks] + [f"{r[m]:.3f}" for m in rank_cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    compared = {name: r["vs_base"] for name, r in retrievers.items() if r.get("vs_base")}
    if compared:
        metrics = [m for m in ("ndcg@10", "top-1", "top-5", "top-20") if all(m in v for v in compared.values())]
        lines += ["", "Difference from the base retriever on the same questions (mean, paired bootstrap 95% CI):", "",
                  "| retriever | " + " | ".join(f"Δ {m}" for m in metrics) + " |", "|---|" + "---:|" * len(metrics)]
        for name, vs in compared.items():
            lines.append(f"| {name} | " + " | ".join(delta_cell(vs[m]) for m in metrics) + " |")
    return lines


def summary(report: dict[str, Any]) -> str:
    """The console's closing table: per retriever top-1/5/20 and nDCG@10 with its difference from
    the base (paired bootstrap 95% CI; ``*`` where the interval excludes zero)."""
    retrievers: dict[str, dict[str, Any]] = report["retrievers"]
    ks = [k for k in ("1", "5", "20") if all(k in r["top_k_accuracy"] for r in retrievers.values())]
    head = ["retriever", *(f"top-{k}" for k in ks), "nDCG@10", "Δ nDCG@10 vs base [95% CI]"]
    rows = []
    for name, r in retrievers.items():
        vs = (r.get("vs_base") or {}).get("ndcg@10")
        delta = "" if not vs else interval(vs) + (" *" if excludes_zero(vs) else "")
        rows.append([name, *(f"{r['top_k_accuracy'][k]:.3f}" for k in ks), f"{r['ndcg@10']:.3f}" if "ndcg@10" in r else "", delta])
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    data = report["dataset"]
    title = f"{data['name']}, split {data['split']} ({data['questions']} questions):"
    return "\n".join([title, line(head), *(line(r) for r in rows)])


def interval(d: dict[str, float]) -> str:
    """``+0.012 [+0.004, +0.020]``: a paired difference and its interval, as every report writes it."""
    return f"{d['delta']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"


def excludes_zero(d: dict[str, float]) -> bool:
    return d["ci_low"] > 0 or d["ci_high"] < 0


def delta_cell(d: dict[str, float]) -> str:
    """``+0.012 [+0.004, +0.020]``, in bold when the interval excludes zero."""
    return f"**{interval(d)}**" if excludes_zero(d) else interval(d)


def rag_markdown(rag: dict[str, Any]) -> str:
    """The RAG QA table: EM / F1 per system (retriever@k, closed-book, oracle)."""
    lines = [
        "## RAG QA",
        "",
        f"Generator: {rag['generator']}; {rag['questions']} test questions with answer strings; "
        "EM and token F1 after SQuAD normalization, best over gold answers; failed calls count as wrong.",
        "",
        "| system | EM | F1 | failed calls |",
        "|---|---:|---:|---:|",
    ]
    for name, r in rag["rows"].items():
        lines.append(f"| {name} | {r['em']:.3f} | {r['f1']:.3f} | {r['failed']} |")
    for name, why in (rag.get("skipped") or {}).items():
        lines += ["", f"Not evaluated: {name} ({why})."]
    return "\n".join(lines)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    pyplot().close(fig)
    return buf.getvalue()


def plot_png(report: dict[str, Any]) -> bytes:
    """Top-k accuracy against k (log scale), one curve per retriever."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, r in report["retrievers"].items():
        ks = sorted(int(k) for k in r["top_k_accuracy"])
        ax.plot(ks, [r["top_k_accuracy"][str(k)] for k in ks], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("top-k accuracy")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{report['dataset']['name']} ({report['dataset']['split']}, n={report['dataset']['questions']})")
    ax.legend()
    return png_bytes(fig)


def rag_png(rag: dict[str, Any]) -> bytes:
    """EM and F1 bars per RAG system."""
    plt = pyplot()
    names = list(rag["rows"])
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(names)), 4), dpi=120)
    xs = range(len(names))
    for offset, metric in ((-0.2, "em"), (0.2, "f1")):
        ax.bar([x + offset for x in xs], [rag["rows"][n][metric] for n in names], width=0.4, label=metric.upper())
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(f"RAG QA, generator {rag['generator']} (n={rag['questions']})")
    ax.legend()
    return png_bytes(fig)


def write(report_dir: str, report: dict[str, Any]) -> str:
    """Write the files (each atomically); return the path of ``report.json``."""
    storage.write_text(storage.join(report_dir, "report.md"), markdown(report))
    storage.write_bytes(storage.join(report_dir, "topk.png"), plot_png(report))
    from components.report_html import page  # it draws with this module's charts

    storage.write_text(storage.join(report_dir, "report.html"), page(report))
    if report.get("rag"):
        storage.write_bytes(storage.join(report_dir, "rag.png"), rag_png(report["rag"]))
    path = storage.join(report_dir, "report.json")
    storage.write_json(path, report)
    return path
