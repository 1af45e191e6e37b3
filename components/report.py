"""The run report: ``report.json`` (machine-readable), ``report.md`` (a table), ``topk.png`` (curves)."""

from __future__ import annotations

import io
from typing import Any

from components import storage

_TABLE_METRICS = ("ndcg@10", "mrr@10", "recall@20", "recall@100")


def markdown(report: dict[str, Any]) -> str:
    """A table per report: one row per retriever, top-k accuracy then rank metrics."""
    retrievers: dict[str, dict[str, Any]] = report["retrievers"]
    ks = sorted({int(k) for r in retrievers.values() for k in r["top_k_accuracy"]})
    rank_cols = [m for m in _TABLE_METRICS if any(m in r for r in retrievers.values())]
    data = report["dataset"]
    lines = [
        f"# idistill report — {data['name']}",
        "",
        f"Split `{data['split']}`: {data['questions']} questions over {data['documents']} documents. "
        f"Top-k accuracy is {report['accuracy_definition']}.",
        "",
        "| retriever | " + " | ".join(f"top-{k}" for k in ks) + "".join(f" | {m}" for m in rank_cols) + " |",
        "|---|" + "---:|" * (len(ks) + len(rank_cols)),
    ]
    for name, r in retrievers.items():
        cells = [f"{r['top_k_accuracy'][str(k)]:.3f}" for k in ks] + [f"{r[m]:.3f}" for m in rank_cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    teacher = report.get("teacher")
    if teacher:
        used = f", {teacher['labels_used']} used for training" if "labels_used" in teacher else ""
        lines += ["", f"Teacher: {teacher['teacher']} ({teacher['backend']}); {teacher['questions']} training questions "
                  f"labelled: {teacher['complete']} complete, {teacher['repaired']} repaired, {teacher['unusable']} unusable, "
                  f"{teacher['failed']} failed{used}."]
    for name, why in (report.get("skipped") or {}).items():
        lines += ["", f"Not evaluated: {name} ({why})."]
    if report.get("validation"):
        lines += ["", "Records dropped on load: " + ", ".join(f"{n} {why}" for why, n in report["validation"].items())]
    return "\n".join(lines) + "\n"


def plot_png(report: dict[str, Any]) -> bytes:
    """Top-k accuracy against k (log scale), one curve per retriever."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write(report_dir: str, report: dict[str, Any]) -> str:
    """Write the three files (each atomically); return the path of ``report.json``."""
    storage.write_text(storage.join(report_dir, "report.md"), markdown(report))
    storage.write_bytes(storage.join(report_dir, "topk.png"), plot_png(report))
    path = storage.join(report_dir, "report.json")
    storage.write_json(path, report)
    return path
