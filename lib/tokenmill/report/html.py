"""`report.html`: one self-contained page (plots inline as PNG) of what a run did, from its manifest and its
written output only. Sections appear when the run has what they show: the funnel with removals by reason
and source, languages with the score threshold, each quality rule's signal for kept and removed documents
with the threshold drawn in, dedup (S-curve, cluster sizes, verification, largest clusters side by side
with the differing words marked), decontamination, tokens, a mixture's planned vs realised tokens, and
throughput. Plots are matplotlib's (Agg, no display needed).
"""

from __future__ import annotations

import base64
import difflib
import html
import io
import logging
import os
import re
from typing import Any

log = logging.getLogger("tokenmill.report")
MAX_SIGNAL_PLOTS = 24
SAMPLE_ROWS = 200_000  # rows read per side (kept / removed) for histograms


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _img(fig, alt: str) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape("" if value is None else str(value))


def _dataset(path: str | None):
    from .explain import _dataset as ds

    return ds(path) if path else None


def _numbers(column):
    """A column's numbers (booleans as 0/1) as a float array without nulls or NaN: what a histogram takes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        return np.zeros(0)
    values = pc.drop_null(column).cast(pa.float64()).to_numpy()
    return values[np.isfinite(values)]


def _columns(dataset, names: list[str]):
    """A sample of ``names`` (those the dataset has) as a pyarrow table, or None."""
    if dataset is None:
        return None
    have = [n for n in names if n in dataset.schema.names]
    if not have:
        return None
    return dataset.head(SAMPLE_ROWS, columns=have)


# ---- sections -------------------------------------------------------------------------------------------

def _kept_removed(labels: list[str], kept: list[int], removed: list[int], title: str,
                  legend: tuple[str, str] = ("kept", "removed")):
    """Horizontal bars, one per label top down: kept, then removed stacked on it, with the numbers."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.2))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, kept, color="#4c72b0", label=legend[0])
    ax.barh(y, removed, left=kept, color="#dd8452", label=legend[1])
    ax.set_yticks(y, labels)
    ax.set_xlabel("documents")
    ax.legend(loc="lower right")
    ax.set_title(title)
    for yi, k, r in zip(y, kept, removed, strict=True):
        ax.text(k + r, yi, f"  {k:,}" + (f" (-{r:,})" if r else ""), va="center", fontsize=8)
    return fig


def funnel(manifest: dict) -> str:
    stages = manifest.get("stages", [])
    if not stages:
        return ""
    fig = _kept_removed([s["stage"] for s in stages], [s["rows_out"] for s in stages],
                        [sum(s["removed"].values()) for s in stages], "The funnel: documents through each stage",
                        ("rows out", "removed here"))
    rows = [[s["stage"], s["name"], s["kind"], s["rows_in"], sum(s["removed"].values()), s["rows_out"],
             s.get("chars_out"), s.get("tokens_out"),
             ", ".join(f"{k} {v:,}" for k, v in sorted(s["removed"].items()))] for s in stages]
    by_source = manifest.get("output", {}).get("removed_by_reason_and_source", {})
    sources = sorted({src for v in by_source.values() for src in v} | set(manifest["output"].get("rows_by_source", {})))
    src_rows = [[reason] + [by_source[reason].get(s, 0) for s in sources] for reason in sorted(by_source)]
    src_rows.append(["kept"] + [manifest["output"].get("rows_by_source", {}).get(s, 0) for s in sources])
    return ("<h2>Funnel</h2>" + _img(fig, "funnel") +
            _table(["stage", "kind of stage", "", "rows in", "removed", "rows out", "characters out", "tokens out",
                    "removed by reason"], rows, "funnel") +
            "<h3>Removals by reason and source</h3>" + _table(["reason"] + sources, src_rows))


def languages(manifest: dict, kept, removed) -> str:
    plt = _plt()
    langs = manifest.get("output", {}).get("languages")
    parts = []
    if langs:
        names = sorted(set(langs.get("kept", {})) | set(langs.get("removed", {})),
                       key=lambda k: -(langs.get("kept", {}).get(k, {}).get("docs", 0) +
                                       langs.get("removed", {}).get(k, {}).get("docs", 0)))[:20]
        fig, ax = plt.subplots(figsize=(9, 3))
        xs = range(len(names))
        k = [langs.get("kept", {}).get(n, {}).get("docs", 0) for n in names]
        r = [langs.get("removed", {}).get(n, {}).get("docs", 0) for n in names]
        ax.bar(xs, k, color="#4c72b0", label="kept")
        ax.bar(xs, r, bottom=k, color="#dd8452", label="removed")
        ax.set_xticks(list(xs), names)
        ax.set_ylabel("documents")
        ax.legend()
        ax.set_title("Languages, kept and removed")
        parts.append(_img(fig, "languages"))
    threshold = next((s.get("min_score") for s in manifest.get("config", {}).get("stages", [])
                      if isinstance(s, dict) and s.get("stage") == "language_filter"), None)
    a, b = _columns(kept, ["lang_score"]), _columns(removed, ["lang_score"])
    if a is not None or b is not None:
        fig, ax = plt.subplots(figsize=(9, 2.8))
        for table, label, color in ((a, "kept", "#4c72b0"), (b, "removed", "#dd8452")):
            if table is not None:
                vals = _numbers(table.column("lang_score"))
                if len(vals):
                    ax.hist(vals, bins=40, range=(0, 1), alpha=0.6, label=label, color=color)
        if threshold is not None:
            ax.axvline(threshold, color="black", linestyle="--", label=f"min_score {threshold}")
        ax.set_xlabel("language score")
        ax.legend()
        ax.set_title("Language score, kept vs removed")
        parts.append(_img(fig, "language scores"))
    return "<h2>Languages</h2>" + "".join(parts) if parts else ""


def thresholded_rules(manifest: dict) -> list[tuple[str, dict]]:
    """(stage label, rule) of every rule with a signal and a min or max that the run's quality filters reported."""
    out = []
    for label, rep in manifest.get("stage_reports", {}).items():
        for rule in rep.get("rules", []) if isinstance(rep, dict) else []:
            if isinstance(rule, dict) and rule.get("signal") and ("min" in rule or "max" in rule):
                out.append((label, rule))
    return out


def quality(manifest: dict, kept, removed) -> str:
    plt = _plt()
    rules = thresholded_rules(manifest)
    failed = manifest.get("output", {}).get("quality", {}).get("failed_by_rule", {})
    if not rules and not failed:
        return ""
    parts = ["<h2>Quality signals</h2>"]
    if failed:
        rows = [[label, rule, n] for label, by in failed.items() for rule, n in sorted(by.items(), key=lambda x: -x[1])]
        parts.append("<p>Documents each rule would remove (a document can fail several; the removal reason is "
                     "the first rule it fails):</p>" + _table(["rule set", "rule", "documents failing it"], rows))
    signals = sorted({r["signal"] for _, r in rules})
    a, b = _columns(kept, signals), _columns(removed, signals + ["removed_by"])
    shown = 0
    for label, rule in rules:
        if shown >= MAX_SIGNAL_PLOTS:
            break
        sig = rule["signal"]
        series = []
        for table, name, color in ((a, "kept", "#4c72b0"), (b, "removed", "#dd8452")):
            if table is not None and sig in table.column_names:
                vals = _numbers(table.column(sig))
                if len(vals):
                    series.append((vals, name, color))
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(4.4, 2.4))
        lo = min(float(v.min()) for v, _, _ in series)
        hi = max(float(v.max()) for v, _, _ in series)
        for vals, name, color in series:
            ax.hist(vals, bins=30, range=(lo, hi if hi > lo else lo + 1), alpha=0.6, label=name, color=color)
        for key in ("min", "max"):
            if key in rule and rule[key] is not None:
                ax.axvline(rule[key], color="black", linestyle="--", label=f"{key} {rule[key]:g}")
        ax.set_title(f"{label}: {rule['name']} ({sig})", fontsize=8)
        ax.legend(fontsize=6)
        parts.append(_img(fig, f"{label} {rule['name']}"))
        shown += 1
    return "".join(parts)


def _mark(words: list[str], other: list[str]) -> str:
    out = []
    for op, i1, i2, _, _ in difflib.SequenceMatcher(a=words, b=other, autojunk=False).get_opcodes():
        chunk = html.escape(" ".join(words[i1:i2]))
        out.append(chunk if op == "equal" else f"<mark>{chunk}</mark>")
    return " ".join(x for x in out if x)


def dedup(manifest: dict, kept, removed) -> str:
    plt = _plt()
    reports = {k: v for k, v in manifest.get("stage_reports", {}).items() if isinstance(v, dict) and "s_curve" in v}
    parts = []
    for label, rep in reports.items():
        curve = {float(k): v for k, v in rep["s_curve"].items()}
        b, r = rep.get("bands"), rep.get("rows")
        fig, ax = plt.subplots(figsize=(4.6, 2.8))
        if b and r:
            xs = [i / 100 for i in range(101)]
            ax.plot(xs, [1 - (1 - x ** r) ** b for x in xs], color="#4c72b0", label=f"{b} bands x {r} rows")
        ax.scatter(list(curve), list(curve.values()), color="#4c72b0", s=12)
        ax.axvline(rep.get("threshold", 0.8), color="black", linestyle="--", label=f"threshold {rep.get('threshold')}")
        ax.set_xlabel("Jaccard similarity")
        ax.set_ylabel("P(candidate)")
        ax.legend(fontsize=7)
        ax.set_title(f"{label}: the S-curve of the bands", fontsize=9)
        parts.append(_img(fig, f"{label} S-curve"))
        sizes = rep.get("clusters_by_size", {})
        if sizes:
            fig, ax = plt.subplots(figsize=(4.6, 2.8))
            ax.bar(list(sizes), list(sizes.values()), color="#4c72b0")
            ax.set_xlabel("cluster size")
            ax.set_ylabel("clusters")
            ax.set_title(f"{label}: cluster sizes", fontsize=9)
            parts.append(_img(fig, f"{label} cluster sizes"))
        est = rep.get("estimate") or {}
        parts.append(_table(["candidate pairs", "after verification", "verify", "precision", "recall", "sample docs"],
                            [[rep.get("candidate_pairs"), rep.get("pairs_after_verification"), rep.get("verify"),
                              est.get("precision"), est.get("recall"), est.get("sample_docs")]]))
    clusters = _largest_clusters(kept, removed)
    if clusters:
        parts.append("<h3>Largest duplicate clusters (differences marked)</h3>")
        for cid, texts in clusters:
            words = [t.split() for t in texts]
            cells = [_mark(words[i], words[0] if i else (words[1] if len(words) > 1 else words[0])) for i in range(len(words))]
            parts.append(f"<p>cluster {html.escape(str(cid))}</p><div class='side'>" +
                         "".join(f"<div>{c[:1500]}</div>" for c in cells) + "</div>")
    return "<h2>Deduplication</h2>" + "".join(parts) if parts else ""


def _largest_clusters(kept, removed, n: int = 3) -> list[tuple[str, list[str]]]:
    names = ["dup_cluster", "dup_cluster_size", "text"]
    rows = []
    for dataset in (kept, removed):
        if dataset is not None and set(names) <= set(dataset.schema.names):  # no text read without clusters
            rows += [r for r in _columns(dataset, names).to_pylist() if r["dup_cluster"] and r["text"]]
    by: dict[str, list[str]] = {}
    size: dict[str, int] = {}
    for r in rows:
        by.setdefault(r["dup_cluster"], []).append(r["text"])
        size[r["dup_cluster"]] = r["dup_cluster_size"] or 0
    top = sorted((c for c in by if len(by[c]) > 1), key=lambda c: (-size[c], c))[:n]
    return [(c, by[c][:3]) for c in top]


def decontamination(manifest: dict) -> str:
    reps = {k: v for k, v in manifest.get("stage_reports", {}).items() if isinstance(v, dict) and "benchmarks" in v}
    if not reps:
        return ""
    parts = ["<h2>Decontamination</h2>"]
    for label, rep in reps.items():
        bench = rep.get("benchmarks")
        if isinstance(bench, dict):
            rows = [[name, *(v.get(k) for k in ("items", "items_found", "documents"))] if isinstance(v, dict) else [name, v]
                    for name, v in bench.items()]
            parts.append(f"<h3>{html.escape(label)}</h3>" + _table(["benchmark", "items", "items found", "documents"], rows))
        else:
            parts.append(f"<h3>{html.escape(label)}</h3><pre>{html.escape(str(bench))[:2000]}</pre>")
    return "".join(parts)


def tokens(manifest: dict) -> str:
    plt = _plt()
    by = manifest.get("output", {}).get("tokens_by_source")
    if not by:
        return ""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar(list(by), [v.get("tokens", 0) for v in by.values()], color="#4c72b0")
    ax.set_ylabel("tokens")
    ax.set_title("Tokens by source")
    rows = [[s, v.get("docs"), v.get("bytes"), v.get("tokens")] for s, v in by.items()]
    return "<h2>Tokens</h2>" + _img(fig, "tokens by source") + _table(["source", "documents", "bytes", "tokens"], rows)


def mixture(manifest: dict) -> str:
    plt = _plt()
    if "planned_tokens" not in manifest or not isinstance(manifest.get("sources"), dict):
        return ""
    srcs = manifest["sources"]
    names = list(srcs)
    fig, ax = plt.subplots(figsize=(8, 2.8))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [srcs[n]["planned_tokens"] for n in names], width=0.4, label="planned", color="#4c72b0")
    ax.bar([x + 0.2 for x in xs], [srcs[n]["realised_tokens"] for n in names], width=0.4, label="realised", color="#55a868")
    ax.set_xticks(list(xs), names, rotation=20, fontsize=8)
    ax.set_ylabel("tokens")
    ax.legend()
    ax.set_title("Mixture: planned vs realised tokens")
    plan = manifest.get("plan", {})
    rows = [[n, srcs[n]["planned_tokens"], srcs[n]["realised_tokens"], srcs[n].get("epochs"), srcs[n].get("ok")]
            for n in names]
    law = [["N (parameters)", plan.get("n_params")], ["D (tokens)", plan.get("tokens")],
           ["law", (plan.get("law") or {}).get("name")], ["predicted loss", plan.get("loss")]]
    return ("<h2>Mixture</h2>" + _img(fig, "mixture") +
            _table(["source", "planned tokens", "realised tokens", "epochs", "within tolerance"], rows) +
            _table(["", ""], law))


def throughput(manifest: dict) -> str:
    stages = manifest.get("stages") or []
    rows_in = stages[0]["rows_in"] if stages else manifest.get("rows")
    wall = manifest.get("run_wall_seconds") or manifest.get("wall_seconds")
    spark = manifest.get("spark", {})
    master = spark.get("master", "")
    cores = os.cpu_count() if master.startswith("local[*]") else None
    if master.startswith("local[") and master[6:-1].isdigit():
        cores = int(master[6:-1])
    rate = rows_in / wall if rows_in and wall else None
    rows = [["documents read", rows_in], ["wall time (s)", wall], ["documents/s", rate],
            ["documents/s/core", rate / cores if rate and cores else None], ["Spark master", master],
            ["Spark application", spark.get("app_id")], ["config fingerprint", manifest.get("fingerprint")],
            ["finished", manifest.get("finished_at")]]
    return "<h2>Throughput and provenance</h2>" + _table(["", ""], rows)


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:.3em .3em .3em 0}
.side{display:flex;gap:8px}.side div{flex:1;border:1px solid #ddd;padding:6px;font-size:12px}mark{background:#ffd54f}
h2{border-bottom:2px solid #4c72b0;padding-bottom:2px}"""


def render(manifest: dict, folder: str, shown: str | None = None) -> str:
    """The report page of the run whose manifest is ``manifest`` and whose output is in ``folder`` (named
    ``shown`` on the page: the final place of a folder being committed)."""
    if (manifest.get("output") or {}).get("removed_mixed"):  # a pointer-committed run: its files stay put
        from .explain import output_datasets

        kept, removed = output_datasets(manifest, folder)
    else:  # a folder being committed by rename: the manifest names the final place, the files are here
        kept = _dataset(f"{folder.rstrip('/')}/data")
        removed = _dataset(f"{folder.rstrip('/')}/removed")
    rows = manifest.get("output", {}).get("rows", manifest.get("rows"))
    sections = [funnel(manifest), languages(manifest, kept, removed), quality(manifest, kept, removed),
                dedup(manifest, kept, removed), decontamination(manifest), tokens(manifest), mixture(manifest),
                throughput(manifest)]
    title = html.escape(str(manifest.get("name", "run")))
    summary = f"<p><b>{_cell(rows)}</b> rows kept · output <code>{html.escape(shown or folder)}</code></p>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>tokenmill: {title}</title>"
            f"<style>{CSS}</style></head><body><h1>tokenmill run: {title}</h1>{summary}"
            + "".join(s for s in sections if s) + "</body></html>")


def render_recipe(manifest: dict, mixture_manifest: dict | None, source_manifests: dict[str, dict]) -> str:
    """The page of a `prepare` run: per source its funnel in brief (read, kept, removed by reason, tokens) with
    a link to its own report, then the mixture (planned vs realised, the law's N and D) and the run's time."""
    names = list(manifest.get("sources", {}))
    rows, kept, removed = [], [], []
    for name in names:
        src, m = manifest["sources"][name], source_manifests.get(name) or {}
        stages = m.get("stages") or []
        reasons = {f"{s['stage']}:{r}": n for s in stages for r, n in s["removed"].items() if n}
        read = stages[0]["rows_in"] if stages else None
        out = m.get("output", {}).get("rows")
        kept.append(out or 0)
        removed.append(sum(reasons.values()))
        report = m.get("output", {}).get("report")
        link = f"<a href='{html.escape(report)}'>report</a>" if report else ""
        rows.append([name, "skipped (up to date)" if src.get("skipped") else "computed", read, out,
                     ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items())) or "-",
                     (src.get("tokens") or {}).get("tokens"), link])
    parts = [f"<h1>tokenmill recipe: {html.escape(str(manifest.get('recipe')))}</h1>",
             f"<p>config <code>{html.escape(str(manifest.get('config')))}</code> · "
             f"{_cell(manifest.get('wall_seconds'))} s</p>", "<h2>Sources</h2>"]
    if names:
        parts.append(_img(_kept_removed(names, kept, removed, "Each source's documents, kept and removed"),
                          "sources"))
    table = _table(["source", "state", "read", "kept", "removed by reason", "tokens", ""], rows)
    # the report links are HTML of our own making: unescape what _cell escaped in the last column
    parts.append(re.sub(r"&lt;a href=&#x27;(.*?)&#x27;&gt;report&lt;/a&gt;",
                        lambda m: f"<a href='{m.group(1)}'>report</a>", table))
    if mixture_manifest:
        parts.append(mixture(mixture_manifest))
    exports = manifest.get("export") or {}
    if exports:
        parts.append("<h2>Exports</h2>" + _table(["source", "documents", "folder"], [
            [n, e.get("documents"), e.get("folder")] for n, e in exports.items()]))
    title = html.escape(str(manifest.get("recipe", "recipe")))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>tokenmill: {title}</title>"
            f"<style>{CSS}</style></head><body>" + "".join(parts) + "</body></html>")


def local_path(folder: str) -> str | None:
    """``folder`` as a path pyarrow and fsspec can open here (file: URIs stripped), or None (s3a://, hdfs://)."""
    if folder.startswith("file:"):
        return "/" + folder[5:].lstrip("/")
    return None if "://" in folder or re.match(r"^[a-z0-9]+:", folder) else folder


def write_report(manifest: dict, folder: str, shown: str | None = None) -> str | None:
    """Render and write ``folder``/report.html; the path (None where the folder is not local: a report of an
    object-store output is written by `tokenmill report --output` on a machine that mounts it)."""
    import fsspec

    local = local_path(folder)
    if local is None:
        log.info("report: %s is not a local folder; run `tokenmill report --output` to write one", folder)
        return None
    folder = local
    page = render(manifest, folder, shown)
    path = f"{folder.rstrip('/')}/report.html"
    with fsspec.open(path, "wt", encoding="utf-8") as handle:
        handle.write(page)
    return path


def report_beside(manifest: dict, folder: str, dest: str) -> None:
    """`report.html` in a folder being committed (TOKENMILL_REPORT=0 skips it); its final path goes into
    ``manifest`` (`output.report`, or `report`). A failure is logged, never the run's: the data is written."""
    if os.environ.get("TOKENMILL_REPORT", "1") == "0":
        return
    try:
        path = write_report(manifest, folder, shown=dest)
    except Exception:  # noqa: BLE001 - a plot must not fail a run whose data is written and checked
        log.warning("report.html could not be written", exc_info=True)
        return
    where = manifest["output"] if isinstance(manifest.get("output"), dict) else manifest
    where["report"] = f"{dest}/report.html" if path else None
