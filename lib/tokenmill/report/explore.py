"""What the notebooks call: open a written run and look into it — quality signals against their thresholds
(and which documents a new threshold would flip), duplicate clusters (exact Jaccard beside the MinHash
estimate), mixture plans for another model size, and an instruction dataset's validation report.

Everything reads written outputs with pyarrow (column projection, filters pushed into the Parquet scan): no
Spark session, nothing rerun. A missing output raises an error that names the command that makes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .explain import load_manifest, output_datasets

SNIPPET = 160


@dataclass
class Run:
    """A finished run: its folder, manifest, and kept (``data/``) and removed (``removed/``) datasets."""

    output: str
    manifest: dict
    kept: Any  # pyarrow.dataset.Dataset | None
    removed: Any

    def columns(self, names: list[str], limit: int | None = None) -> pd.DataFrame:
        """``names`` (those written) of kept and removed rows, with ``status`` (``kept`` or the removal reason)."""
        frames = []
        for dataset, kept in ((self.kept, True), (self.removed, False)):
            if dataset is None:
                continue
            have = [n for n in names if n in dataset.schema.names]
            if not kept and "removed_by" in dataset.schema.names:
                have.append("removed_by")
            table = dataset.head(limit, columns=have) if limit else dataset.to_table(columns=have)
            frame = table.to_pandas()
            frame["status"] = "kept" if kept else frame.pop("removed_by")
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*names, "status"])


def open_run(output: str | os.PathLike, command: str) -> Run:
    """The run written to ``output``; a missing or unfinished run names ``command``, the one that makes it."""
    output = str(output)
    if "://" not in output and not os.path.exists(output):
        raise ConfigError(f"{output}: no output here yet; make it with:\n    {command}")
    try:
        manifest = load_manifest(output)
    except ConfigError as exc:
        raise ConfigError(f"{exc}\nmake it with:\n    {command}") from None
    return Run(output, manifest, *output_datasets(manifest, output))


# ---- quality thresholds ---------------------------------------------------------------------------------

def quality_rules(manifest: dict) -> pd.DataFrame:
    """Every thresholded rule the run's quality filters applied: stage, rule, signal, min, max, where from."""
    from .html import thresholded_rules

    rows = [{"stage": label, "rule": rule["name"], "signal": rule["signal"], "min": rule.get("min"),
             "max": rule.get("max"), "source": rule.get("source", "")} for label, rule in thresholded_rules(manifest)]
    return pd.DataFrame(rows, columns=["stage", "rule", "signal", "min", "max", "source"])


def _rule(run: Run, stage: str, rule: str) -> dict:
    rules = quality_rules(run.manifest)
    hit = rules[(rules["stage"] == stage) & (rules["rule"] == rule)]
    if hit.empty:
        known = ", ".join(f"{s}:{r}" for s, r in zip(rules["stage"], rules["rule"], strict=True))
        raise ConfigError(f"no thresholded rule {stage}:{rule} in {run.output} (it has {known or 'none'})")
    return hit.iloc[0].to_dict()


def _fails(values: pd.Series, lo: float | None, hi: float | None) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    out = pd.Series(False, index=values.index)
    if lo is not None and not pd.isna(lo):
        out |= v < lo
    if hi is not None and not pd.isna(hi):
        out |= v > hi
    return out & v.notna()


def rule_overlap(run: Run, stage: str) -> pd.DataFrame:
    """Per rule of a quality stage: documents it failed, those it removed (its first failure), and those no
    other rule of the stage would have removed (what the rule decides on its own)."""
    rows = run.columns(["quality_failed"])
    rows = rows[rows["status"].str.startswith(f"{stage}:")]
    out = []
    for rule in quality_rules(run.manifest).query("stage == @stage")["rule"]:
        failed = rows["quality_failed"].map(lambda xs, r=rule: xs is not None and r in list(xs))
        alone = rows["quality_failed"].map(lambda xs, r=rule: xs is not None and list(xs) == [r])
        out.append({"rule": rule, "failed": int(failed.sum()), "removed_by_it": int((rows["status"] ==
                    f"{stage}:{rule}").sum()), "only_this_rule": int(alone.sum())})
    return pd.DataFrame(out, columns=["rule", "failed", "removed_by_it", "only_this_rule"])


def threshold_flips(run: Run, stage: str, rule: str, min: float | None = None, max: float | None = None
                    ) -> dict[str, pd.DataFrame]:
    """Which documents a new ``min``/``max`` for one rule would flip, from the written signal values:
    ``newly_removed`` (kept now, failing the new threshold) and ``newly_passing`` (removed by this stage with
    this rule as its only failure, passing the new one: they would go on to the later stages)."""
    spec = _rule(run, stage, rule)
    signal = spec["signal"]
    rows = run.columns(["id", "url", "text", signal, "quality_failed"])
    if signal not in rows:
        raise ConfigError(f"{run.output}: the signal {signal} was not written (quality_filter keeps it as an "
                          "audit column: was the run older than that?)")
    rows["text"] = rows["text"].str.slice(0, SNIPPET)
    fails_new = _fails(rows[signal], min, max)
    kept = rows["status"] == "kept"
    only = rows["quality_failed"].map(lambda xs: xs is not None and list(xs) == [rule])
    mine = rows["status"] == f"{stage}:{rule}"
    cols = ["id", "url", signal, "status", "text"]
    return {"newly_removed": rows.loc[kept & fails_new, cols].reset_index(drop=True),
            "newly_passing": rows.loc[mine & only & ~fails_new, cols].reset_index(drop=True)}


def plot_signal(run: Run, stage: str, rule: str, min: float | None = None, max: float | None = None, ax=None):
    """The rule's signal for kept and removed documents, the run's threshold dashed and a new one dotted."""
    import matplotlib.pyplot as plt

    spec = _rule(run, stage, rule)
    signal = spec["signal"]
    rows = run.columns([signal])
    values = pd.to_numeric(rows[signal], errors="coerce")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    finite = values.dropna()
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
    for mask, name, color in ((rows["status"] == "kept", "kept", "#4c72b0"),
                              (rows["status"].str.startswith(f"{stage}:"), f"removed by {stage}", "#dd8452"),
                              (~rows["status"].str.startswith(f"{stage}:") & (rows["status"] != "kept"),
                               "removed elsewhere", "#999999")):
        if values[mask].notna().any():
            ax.hist(values[mask].dropna(), bins=bins, alpha=0.6, label=name, color=color)
    for key, new in (("min", min), ("max", max)):
        if spec.get(key) is not None and not pd.isna(spec[key]):
            ax.axvline(spec[key], color="black", linestyle="--", label=f"{key} {spec[key]:g} (run)")
        if new is not None:
            ax.axvline(new, color="crimson", linestyle=":", label=f"{key} {new:g} (new)")
    ax.set_xlabel(signal)
    ax.set_ylabel("documents")
    ax.set_title(f"{stage}: {rule}")
    ax.legend(fontsize=7)
    return ax


# ---- duplicate clusters ---------------------------------------------------------------------------------

def clusters(run: Run, top: int = 10) -> pd.DataFrame:
    """The largest duplicate clusters: id, size (the stage's ``dup_cluster_size``, else survivor + removed),
    documents removed, the reason, and the survivor (``dup_of``) with its URL when it was kept."""
    rows = run.columns(["id", "url", "dup_cluster", "dup_cluster_size", "dup_of"])
    if "dup_cluster" not in rows or "dup_of" not in rows:
        raise ConfigError(f"{run.output}: no duplicate clusters written (no minhash_dedup or exact_dedup stage)")
    removed = rows[rows["dup_cluster"].notna() & (rows["status"] != "kept")]
    if "dup_cluster_size" not in removed:
        removed = removed.assign(dup_cluster_size=None)
    out = (removed.groupby("dup_cluster").agg(size=("dup_cluster_size", "max"), removed=("id", "count"),
                                               reason=("status", "first"), survivor=("dup_of", "first"))
           .reset_index())
    out["size"] = out["size"].fillna(out["removed"] + 1).astype(int)
    urls = rows[rows["status"] == "kept"].drop_duplicates("id").set_index("id")["url"]
    out["survivor_url"] = out["survivor"].map(urls)  # none: the survivor was removed by a later stage
    return (out.sort_values(["size", "removed", "dup_cluster"], ascending=[False, False, True]).head(top)
            .reset_index(drop=True))


def cluster(run: Run, cluster_id: str) -> pd.DataFrame:
    """One cluster's documents, its survivor first (found by ``dup_of`` even when a later stage moved it to
    another cluster or removed it): id, url, status, text."""
    import pyarrow.dataset as ds

    def rows(cond) -> pd.DataFrame:
        frames = []
        for dataset, kept in ((run.kept, True), (run.removed, False)):
            if dataset is None or "dup_cluster" not in dataset.schema.names:
                continue
            names = ["id", "url", "text", "dup_of"] + ([] if kept else ["removed_by"])
            frame = dataset.to_table(columns=names, filter=cond).to_pandas()
            frame["status"] = "kept" if kept else frame.pop("removed_by")
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    members = rows(ds.field("dup_cluster") == cluster_id)
    if members.empty:
        known = clusters(run, 3)["dup_cluster"].tolist()
        raise ConfigError(f"no duplicate cluster {cluster_id!r} in {run.output} (the largest: {', '.join(known)})")
    survivors = sorted(set(members["dup_of"].dropna()) - set(members["id"]))
    if survivors:
        members = pd.concat([members, rows(ds.field("id").isin(survivors))], ignore_index=True)
    members["order"] = members["dup_of"].notna().astype(int)
    return members.sort_values(["order", "id"]).drop(columns=["order", "dup_of"]).reset_index(drop=True)


def _minhash_params(run: Run, stage: str):
    from ..dedup.minhash_stage import MinHashDedupParams

    for entry in run.manifest.get("config", {}).get("stages", []):
        if isinstance(entry, dict) and (entry.get("id") or entry.get("stage")) == stage:
            fields = {k: v for k, v in entry.items() if k in MinHashDedupParams.model_fields}
            return MinHashDedupParams(**fields)
    raise ConfigError(f"{run.output}: no stage {stage!r} in the run's config")


def jaccard_vs_estimate(run: Run, cluster_id: str, stage: str = "minhash_dedup") -> pd.DataFrame:
    """Each member against the cluster's survivor: the exact Jaccard of their shingle sets and the MinHash
    estimate (share of equal signature slots) with the run's own shingles, hashes and seed."""
    from ..dedup.minhash import estimated_jaccard, shingle_hashes, signatures

    members = cluster(run, cluster_id)
    spec = _minhash_params(run, stage).spec()
    hashes, offsets = shingle_hashes(members["text"].fillna("").tolist(), spec)
    sig = signatures(hashes, offsets, spec)
    sets = [set(hashes[offsets[i]:offsets[i + 1]].tolist()) for i in range(len(members))]
    rows = []
    for i in range(1, len(members)):
        union = len(sets[0] | sets[i])
        rows.append({"id": members["id"][i], "survivor": members["id"][0], "status": members["status"][i],
                     "jaccard": len(sets[0] & sets[i]) / union if union else 1.0,
                     "estimate": float(estimated_jaccard(sig[0], sig[i]))})
    return pd.DataFrame(rows, columns=["id", "survivor", "status", "jaccard", "estimate"])


# ---- mixture plans --------------------------------------------------------------------------------------

def mixture_plan(config: str | os.PathLike, manifest: str | os.PathLike | None = None, overrides: list[str] = (),
                 **target: float):
    """The plan of a mixture config for another target (``n_params=``, ``compute_flops=`` or
    ``total_tokens=``), every source's unique tokens from ``manifest`` (a pipeline run's) when given:
    (the plan, a table of it)."""
    from ..mixing.build import unique_tokens
    from ..mixing.config import load_mixture
    from ..mixing.plan import plan_mixture

    if manifest is not None and not os.path.exists(manifest):
        raise ConfigError(f"{manifest}: no such manifest; make the pipeline run first, e.g.:\n    make run")
    cfg = load_mixture(str(config), list(overrides))
    if manifest is not None:
        cfg = cfg.model_copy(update={"sources": [s.model_copy(update={"manifest": str(manifest)})
                                                 for s in cfg.sources]})
    settings = cfg.plan
    if target:
        settings = settings.model_copy(update={"target": settings.target.model_copy(
            update={k: target.get(k) for k in ("n_params", "compute_flops", "total_tokens")})})
        settings = type(settings).model_validate(settings.model_dump())
    plan = plan_mixture(settings, unique_tokens(None, cfg, str(config)))
    table = pd.DataFrame([{"source": s.name, "unique_tokens": s.unique_tokens, "target_tokens": s.target_tokens,
                           "share": s.share, "epochs": s.epochs, "capped": s.capped, "limited_by": s.limited_by}
                          for s in plan.sources])
    return plan, table


def plot_plan(plan, ax=None):
    """Tokens per source (unique and planned) with the epochs each is seen, one bar pair per source."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    names = [s.name for s in plan.sources]
    xs = np.arange(len(names))
    ax.bar(xs - 0.2, [s.unique_tokens for s in plan.sources], width=0.4, label="unique tokens", color="#999999")
    ax.bar(xs + 0.2, [s.target_tokens for s in plan.sources], width=0.4, label="planned tokens", color="#4c72b0")
    for x, s in zip(xs, plan.sources, strict=True):
        ax.text(x + 0.2, s.target_tokens, f"{s.epochs:.2f} ep", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, [n.split("/")[-1] for n in names], rotation=15, fontsize=8)
    ax.set_ylabel("tokens")
    n = f"N = {plan.n_params:,.0f}, " if plan.n_params else ""
    ax.set_title(f"{n}D = {plan.tokens:,.0f} tokens")
    ax.legend(fontsize=8)
    return ax


# ---- instruction data -----------------------------------------------------------------------------------

def validation(output: str | os.PathLike, command: str) -> dict:
    """The ``validation.json`` of a ``validate_dataset`` run; a missing one names ``command``."""
    path = os.path.join(str(output), "validation.json")
    if not os.path.exists(path):
        raise ConfigError(f"{path}: no validation report here yet; make it with:\n    {command}")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def problems(report: dict) -> pd.DataFrame:
    """Every problem the validation counted (at read and after mapping), with its example rows."""
    rows = []
    for where, entries in (("read", report.get("rows", {}).get("removed_at_read", {})),
                           ("mapped", report.get("problems", {}))):
        for name, entry in entries.items():
            rows.append({"problem": name, "found": where, "rows": entry["count"],
                         "examples": ", ".join(e.get("where") or e.get("id") or "" for e in entry["examples"])})
    return pd.DataFrame(rows, columns=["problem", "found", "rows", "examples"])


def token_lengths(report: dict) -> pd.DataFrame:
    """Token lengths of prompts, responses and both (min, median, p95, max), one row each."""
    tokens = report.get("tokens") or {}
    return pd.DataFrame([{"part": part, **tokens[part]} for part in ("prompt", "response", "total") if part in tokens])
