"""``report.html``: the run report as one self-contained page to look at (no scripts, no network:
tables and charts inlined as PNG data URIs), written beside ``report.md`` from the same
``report.json``: the metric table with confidence intervals, top-k curves, the per-question
ΔnDCG@10 distribution, label outcomes, both stages' loss curves, and the RAG QA table when present.
"""

from __future__ import annotations

import base64
import html
from typing import Any, Optional

from components.report import TABLE_METRICS, excludes_zero, interval, plot_png, png_bytes, pyplot, rag_png

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.sig{font-weight:bold}img{max-width:100%}.note{color:#555}"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _delta(d: dict[str, float]) -> str:
    text = html.escape(interval(d))
    return f'<span class="sig">{text}</span>' if excludes_zero(d) else text


def metrics_table(retrievers: dict[str, dict[str, Any]]) -> str:
    ks = sorted({int(k) for r in retrievers.values() for k in r["top_k_accuracy"]})
    rank = [m for m in TABLE_METRICS if any(m in r for r in retrievers.values())]
    rows = []
    for name, r in retrievers.items():
        vs = r.get("vs_base") or {}
        rows.append([html.escape(name)] + [f"{r['top_k_accuracy'][str(k)]:.3f}" for k in ks] + [f"{r[m]:.3f}" for m in rank]
                    + [_delta(vs[m]) if m in vs else "" for m in ("ndcg@10", "top-1")])
    return _table(["retriever", *[f"top-{k}" for k in ks], *rank, "Δ nDCG@10 vs base [95% CI]", "Δ top-1 vs base [95% CI]"], rows)


def delta_png(report: dict[str, Any]) -> Optional[bytes]:
    """Histogram of each retriever's per-question nDCG@10 minus the base's."""
    per = (report.get("per_question") or {}).get("ndcg@10") or {}
    base = per.get(report.get("base", ""))
    if base is None or len(per) < 2:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    for name, values in per.items():
        if name != report["base"]:
            ax.hist([v - b for v, b in zip(values, base)], bins=31, range=(-1, 1), alpha=0.5, label=name)
    ax.set_xlabel("per-question nDCG@10 minus the base's")
    ax.set_ylabel("questions")
    ax.legend(fontsize=8)
    return png_bytes(fig)


def labels_png(teacher: dict[str, Any]) -> bytes:
    plt = pyplot()
    outcomes = ["complete", "repaired", "unusable", "failed"]
    fig, ax = plt.subplots(figsize=(5, 3), dpi=110)
    ax.bar(outcomes, [teacher.get(o, 0) for o in outcomes], color=["#2a7", "#9c3", "#e93", "#d33"])
    ax.set_ylabel("questions")
    ax.set_title(f"labels from {teacher['teacher']}")
    return png_bytes(fig)


def losses_png(losses: dict[str, list[list[float]]]) -> bytes:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(losses), figsize=(5 * len(losses), 3), dpi=110, squeeze=False)
    for ax, (stage, points) in zip(axes[0], losses.items()):
        ax.plot([p[0] for p in points], [p[1] for p in points], lw=0.8)
        ax.set_title(f"{stage} loss")
        ax.set_xlabel("step")
    return png_bytes(fig)


def page(report: dict[str, Any]) -> str:
    data = report["dataset"]
    parts = [f"<h1>idistill report — {html.escape(str(data['name']))}</h1>",
             f"<p>Split <code>{html.escape(str(data['split']))}</code>: {data['questions']} questions over "
             f"{data['documents']} documents. Top-k accuracy is {html.escape(report['accuracy_definition'])}. "
             "Δ: mean per-question difference from the base retriever, paired bootstrap 95% CI (bold when it excludes 0).</p>",
             "<h2>Retrievers</h2>", metrics_table(report["retrievers"])]
    parts += [f'<p class="note">Not evaluated: {html.escape(n)} ({html.escape(w)}).</p>' for n, w in (report.get("skipped") or {}).items()]
    parts += ["<h2>Top-k accuracy</h2>", _img(plot_png(report), "top-k accuracy against k")]
    delta = delta_png(report)
    if delta:
        parts += ["<h2>Per-question ΔnDCG@10</h2>", _img(delta, "per-question nDCG@10 difference from the base")]
    if report.get("teacher"):
        parts += ["<h2>Labels</h2>", _img(labels_png(report["teacher"]), "label outcomes")]
    if report.get("losses"):
        parts += ["<h2>Training</h2>", _img(losses_png(report["losses"]), "loss curves")]
    if report.get("rag"):
        rag = report["rag"]
        parts += ["<h2>RAG QA</h2>", f"<p>Generator {html.escape(str(rag['generator']))}, {rag['questions']} questions.</p>",
                  _table(["system", "EM", "F1", "failed calls"],
                         [[html.escape(n), f"{r['em']:.3f}", f"{r['f1']:.3f}", str(r["failed"])] for n, r in rag["rows"].items()]),
                  _img(rag_png(rag), "RAG EM and F1")]
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>idistill report — "
            f"{html.escape(str(data['name']))}</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
