"""Build a token-budgeted mixture: each document k times plus a stable-hash fractional pass, shuffled into
Parquet shards of about `shard_tokens` tokens, with a manifest of realised against planned tokens.

Selection (docs/scaling-and-mixing.md §8.4): a document of a source with target x and weighted size S = Σ m·t is emitted
c = m·x/S times: floor(c) full passes, and one more where `u < frac(c)`, u a uniform number from a stable
hash of (seed, source, id). That is Bernoulli selection: no sort, no partition dependence. Where its
predicted spread is too large for the tolerance (small sources) or `exact_tokens` is set, the fractional
pass instead takes the prefix, in weighted-random order, whose tokens reach the remaining target exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from .. import __version__
from ..errors import ConfigError, TokenmillError
from ..io.hadoopfs import HadoopFS, qualify
from ..io.outputs import OutputLock, check_destination
from ..pipeline.commit import StagedOutput, read_manifest, resolve_data
from ..pipeline.manifest import versions
from ..schema import ID, SOURCE, TEXT
from ..text.hashing import unit_hash
from ..tokens.count import N_TOKENS, N_TOKENS_ESTIMATED, bytes_column, estimate_column
from .config import MixSource, MixtureConfig, Upsample, tokens_from_manifest
from .plan import MixturePlan, PlanSource, plan_mixture

log = logging.getLogger("tokenmill.mixing")

PASS_IDX = "pass_idx"
WEIGHT = "_mix_weight"
OUTPUT_COLUMNS = [TEXT, SOURCE, ID, PASS_IDX, N_TOKENS, N_TOKENS_ESTIMATED]


class MixtureError(TokenmillError):
    """The built mixture misses its plan by more than the tolerance (nothing is written)."""


# --- reading the sources ------------------------------------------------------------------------------

def read_mix_source(spark: SparkSession, src: MixSource, where: str, extra: list[str],
                    upsample: Upsample | None) -> DataFrame:
    """One source's documents as (source, id, text, n_tokens, n_tokens_estimated, weight, extra...)."""
    if not src.path:
        raise ConfigError(f"{where}: source {src.name!r} needs `path` (its Parquet data) to be built")
    try:
        df = spark.read.parquet(resolve_data(spark, src.path))
    except Exception as exc:
        raise ConfigError(f"{where}: source {src.name!r}: cannot read Parquet at {src.path} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if src.source_value != "*" and SOURCE in df.columns:
        df = df.where(F.col(SOURCE) == src.source_value)
    missing = [c for c in (ID, TEXT, *extra) if c not in df.columns]
    if upsample and upsample.column not in df.columns:
        missing.append(upsample.column)
    if missing:
        raise ConfigError(f"{where}: source {src.name!r} ({src.path}) has no column(s) {', '.join(missing)}; "
                          f"it has {', '.join(df.columns)}")
    if N_TOKENS in df.columns:
        n_tokens = F.col(N_TOKENS).cast("long")
        estimated = F.col(N_TOKENS_ESTIMATED) if N_TOKENS_ESTIMATED in df.columns else F.lit(False)
    elif src.bytes_per_token:
        n_tokens = estimate_column(bytes_column(TEXT), F.lit(src.bytes_per_token))
        estimated = F.lit(True)
    else:
        raise ConfigError(f"{where}: source {src.name!r} ({src.path}) has no `n_tokens` column: run the `tokens` "
                          f"stage on it, or set `bytes_per_token` to estimate")
    return df.select(F.lit(src.name).alias(SOURCE), F.col(ID).cast("string").alias(ID), F.col(TEXT),
                     n_tokens.alias(N_TOKENS), estimated.cast("boolean").alias(N_TOKENS_ESTIMATED),
                     weight_column(upsample).alias(WEIGHT), *[F.col(c) for c in extra])


def weight_column(upsample: Upsample | None) -> Column:
    """Per-document multiplier (1 without upsampling)."""
    if upsample is None:
        return F.lit(1.0)
    col = F.col(upsample.column)
    expr = None
    if upsample.weights:
        for value, weight in sorted(upsample.weights.items()):
            cond = col.cast("string") == F.lit(value)
            expr = F.when(cond, F.lit(float(weight))) if expr is None else expr.when(cond, F.lit(float(weight)))
    else:
        for r in upsample.ranges:
            cond = col >= F.lit(r.min)
            if r.max is not None:
                cond = cond & (col <= F.lit(r.max))
            expr = F.when(cond, F.lit(r.weight)) if expr is None else expr.when(cond, F.lit(r.weight))
    return expr.otherwise(F.lit(upsample.default)).cast("double")


def read_all(spark: SparkSession, cfg: MixtureConfig, where: str) -> DataFrame:
    frames = [read_mix_source(spark, s, f"{where}: sources[{i}]", cfg.build.columns, cfg.build.upsample)
              for i, s in enumerate(cfg.sources)]
    df = frames[0]
    for f in frames[1:]:
        df = df.unionByName(f)
    return df


def measure(df: DataFrame) -> dict[str, list[dict]]:
    """Per source and weight class: docs, tokens, Σ tokens², max tokens (one small aggregation)."""
    rows = (df.where(F.col(N_TOKENS).isNotNull())
            .groupBy(SOURCE, WEIGHT)
            .agg(F.count("*").alias("docs"), F.sum(N_TOKENS).alias("tokens"),
                 F.sum(F.col(N_TOKENS).cast("double") ** 2).alias("tokens_sq"), F.max(N_TOKENS).alias("max_tokens"),
                 F.max(F.col(N_TOKENS_ESTIMATED).cast("int")).alias("estimated"))
            .collect())  # small: one row per source and weight class
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r[SOURCE], []).append({"weight": r[WEIGHT], "docs": r["docs"], "tokens": r["tokens"] or 0,
                                              "tokens_sq": r["tokens_sq"] or 0.0, "max_tokens": r["max_tokens"] or 0,
                                              "estimated": bool(r["estimated"])})
    return out


def unique_tokens(spark: SparkSession | None, cfg: MixtureConfig, where: str) -> list[PlanSource]:
    """Plan sources with unique tokens: given, else from a manifest, else measured from the data."""
    out: list[PlanSource | None] = []
    need = []
    for i, s in enumerate(cfg.sources):
        if s.unique_tokens is not None:
            out.append(s.plan_source(s.unique_tokens))
        elif s.manifest:
            t = tokens_from_manifest(s.manifest, s.source_value)
            out.append(s.plan_source(float(t["tokens"]), t.get("docs"), t.get("bytes_per_token")))
        else:
            out.append(None)
            need.append(i)
    if need:
        if spark is None:
            raise ConfigError(f"{where}: no unique_tokens or manifest for "
                              f"{', '.join(cfg.sources[i].name for i in need)}")
        sub = cfg.model_copy(update={"sources": [cfg.sources[i] for i in need]})
        sizes = measure(read_all(spark, sub.model_copy(update={"build": sub.build.model_copy(
            update={"upsample": None, "columns": []})}), where))
        for i in need:
            classes = sizes.get(cfg.sources[i].name, [])
            out[i] = cfg.sources[i].plan_source(float(sum(c["tokens"] for c in classes)),
                                                sum(c["docs"] for c in classes))
    return out  # type: ignore[return-value]


# --- selection ----------------------------------------------------------------------------------------

@dataclass
class SourceSelection:
    name: str
    target: float
    scale: float  # e' = target / Σ m·t: copies of a document = m·e'
    method: str  # "bernoulli" | "exact_prefix" | "full_passes"
    remaining: float  # tokens the fractional pass must supply
    expected: float
    predicted_sd: float
    unique_tokens: float
    docs: int
    max_tokens: int
    estimated: bool


def select_plan(plan_targets: dict[str, float], sizes: dict[str, list[dict]], exact: bool, tolerance: float,
                sigmas: float) -> dict[str, SourceSelection]:
    out = {}
    for name, target in plan_targets.items():
        classes = sizes.get(name, [])
        weighted = sum(c["weight"] * c["tokens"] for c in classes)
        if target > 0 and weighted <= 0:
            raise MixtureError(f"source {name!r}: the plan wants {target:.6g} tokens but the source has no "
                               f"(weighted) tokens in its data")
        scale = target / weighted if weighted else 0.0
        full = var = frac_tokens = 0.0
        for c in classes:
            copies = c["weight"] * scale
            k = math.floor(copies + 1e-9)
            f = max(copies - k, 0.0)
            full += k * c["tokens"]
            frac_tokens += f * c["tokens"]
            var += f * (1 - f) * c["tokens_sq"]
        sd = math.sqrt(var)
        if frac_tokens <= 0:
            method = "full_passes"
        elif exact or sigmas * sd > tolerance * target:
            method = "exact_prefix"
        else:
            method = "bernoulli"
        out[name] = SourceSelection(name, target, scale, method, target - full, full + frac_tokens, sd,
                                    float(sum(c["tokens"] for c in classes)), sum(c["docs"] for c in classes),
                                    max([c["max_tokens"] for c in classes] + [0]),
                                    any(c["estimated"] for c in classes))
    return out


def _lookup(values: dict[str, float]) -> Column:
    m = F.create_map(*[x for k, v in sorted(values.items()) for x in (F.lit(k), F.lit(float(v)))])
    return m[F.col(SOURCE)]


def emit(df: DataFrame, sel: dict[str, SourceSelection], seed: int) -> DataFrame:
    """Rows of the mixture: each document repeated by its selection, with `pass_idx` 0..copies-1."""
    df = df.where(F.col(SOURCE).isin(list(sel)) & F.col(N_TOKENS).isNotNull())
    copies = F.col(WEIGHT) * _lookup({k: s.scale for k, s in sel.items()})
    df = (df.withColumn("_k", F.floor(copies + F.lit(1e-9)).cast("int"))
          .withColumn("_f", F.greatest(copies - F.col("_k"), F.lit(0.0)))
          .withColumn("_u", unit_hash(seed, SOURCE, ID)))
    exact = [k for k, s in sel.items() if s.method == "exact_prefix"]
    parts = [df.where(~F.col(SOURCE).isin(exact)).withColumn("_extra", F.col("_u") < F.col("_f"))]
    if exact:
        ex = df.where(F.col(SOURCE).isin(exact))
        # Weighted order without replacement (Efraimidis & Spirakis 2006): key = ln(1-u)/f, largest first;
        # with equal f this is ascending u, the same order Bernoulli selection uses.
        key = F.when(F.col("_f") > 0, F.log(1 - F.col("_u")) / F.col("_f"))
        w = (Window.partitionBy(SOURCE).orderBy(F.col("_key").desc_nulls_last(), F.col(ID))
             .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        ex = (ex.withColumn("_key", key)
              .withColumn("_cum", F.sum(F.when(F.col("_key").isNotNull(), F.col(N_TOKENS)).otherwise(0)).over(w))
              .withColumn("_r", _lookup({k: sel[k].remaining for k in exact}))
              # the prefix up to the target; the document crossing it only if that lands closer to the target
              .withColumn("_extra", F.col("_key").isNotNull()
                          & ((F.col("_cum") <= F.col("_r"))
                             | ((F.col("_cum") - F.col(N_TOKENS) < F.col("_r"))
                                & (F.col("_cum") - F.col("_r") <= F.col("_r") - (F.col("_cum") - F.col(N_TOKENS))))))
              .drop("_r")
              .drop("_key", "_cum"))
        parts.append(ex)
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    out = out.withColumn("_copies", F.col("_k") + F.col("_extra").cast("int")).where(F.col("_copies") > 0)
    out = out.withColumn(PASS_IDX, F.explode(F.sequence(F.lit(0), F.col("_copies") - 1)))
    return out.drop("_k", "_f", "_u", "_extra", "_copies", WEIGHT)


def order_into_shards(df: DataFrame, n_shards: int, order: str, seed: int) -> DataFrame:
    """Shards of about equal tokens: hash-partitioned on a stable random key (or ranged by pass for an
    epoch-ordered curriculum), sorted by that key inside each shard so repeats land far apart."""
    key = F.xxhash64(F.lit(seed), F.col(SOURCE), F.col(ID), F.col(PASS_IDX))
    df = df.withColumn("_order", key)
    if order == "epoch_ordered":
        df = df.repartitionByRange(n_shards, F.col(PASS_IDX), F.col("_order"))
        return df.sortWithinPartitions(PASS_IDX, "_order").drop("_order")
    return df.repartition(n_shards, F.col("_order")).sortWithinPartitions("_order").drop("_order")


# --- the job ------------------------------------------------------------------------------------------

def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _input_fingerprint(spark: SparkSession, cfg: MixtureConfig) -> list:
    """A pipeline output's manifest fingerprint when there is one, else its files' sizes and times."""
    out = []
    for s in cfg.sources:
        if not s.path:
            continue
        parent = qualify(s.path).rstrip("/").rsplit("/", 1)[0]
        manifest = read_manifest(spark, parent)
        if manifest and manifest.get("fingerprint"):
            out.append({"source": s.name, "pipeline_fingerprint": manifest["fingerprint"]})
        else:
            files = HadoopFS(spark, s.path).list_files(resolve_data(spark, s.path))
            out.append({"source": s.name, "files": [(os.path.basename(p), n, t) for p, n, t in files]})
    return out


@dataclass
class BuildResult:
    output: str
    manifest: dict
    plan: MixturePlan | dict
    skipped: bool


def build_mixture(spark: SparkSession, cfg: MixtureConfig, config_path: str = "<config>",
                  plan_file: str | None = None, force: bool = False) -> BuildResult:
    """Plan (or load a plan), select, shuffle and write the shards atomically; validate against the plan."""
    dest = qualify(cfg.output)
    check_destination(spark, dest, "output", [s.path for s in cfg.sources if s.path])
    with OutputLock(spark, dest):
        started = time.time()
        given_plan = _read_plan_file(plan_file)
        fingerprint = _digest({"version": __version__, "config": cfg.model_dump(mode="json"), "plan": given_plan,
                               "inputs": _input_fingerprint(spark, cfg)})
        previous = read_manifest(spark, dest)
        if not force and previous and previous.get("fingerprint") == fingerprint:
            log.info("mixture up to date, skipping: %s", dest)
            return BuildResult(dest, previous, previous.get("plan", {}), True)
        df = read_all(spark, cfg, config_path)
        sizes = measure(df)
        plan, plan_dict, warnings = _plan_for(cfg, sizes, given_plan, plan_file)
        targets = {s["name"]: float(s["target_tokens"]) for s in plan_dict["sources"]}
        sel = select_plan(targets, sizes, cfg.plan.exact_tokens, cfg.plan.tolerance, cfg.build.sigmas)
        n_shards = max(1, math.ceil(sum(targets.values()) / cfg.build.shard_tokens))
        rows = emit(df, sel, cfg.plan.seed).select(*OUTPUT_COLUMNS, *cfg.build.columns)
        rows = order_into_shards(rows, n_shards, cfg.build.order, cfg.plan.seed)
        facts = {"fingerprint": fingerprint, "config_file": os.path.abspath(config_path), "plan": plan_dict,
                 "planned_tokens": sum(targets.values()), "warnings": warnings, "started": started}
        manifest = _write_shards(spark, cfg, dest, rows, sel, facts)
    return BuildResult(dest, manifest, plan, False)


def _read_plan_file(plan_file: str | None) -> dict | None:
    if not plan_file:
        return None
    import fsspec

    with fsspec.open(plan_file, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _plan_for(cfg: MixtureConfig, sizes: dict, given_plan: dict | None, plan_file: str | None
              ) -> tuple[MixturePlan | dict, dict, list[str]]:
    """The plan to build: made from the measured sizes, or the given plan checked against them; with the
    warnings of the plan and of any size it assumed that the data no longer has."""
    warnings: list[str] = []
    if given_plan is None:
        sources = []
        for s in cfg.sources:
            classes = sizes.get(s.name, [])
            sources.append(s.plan_source(float(sum(c["tokens"] for c in classes)), sum(c["docs"] for c in classes)))
        plan = plan_mixture(cfg.plan, sources)
        plan_dict = plan.to_dict()
        return plan, plan_dict, warnings + list(plan_dict.get("warnings", []))
    names = {s["name"] for s in given_plan["sources"]}
    if names != {s.name for s in cfg.sources}:
        raise ConfigError(f"{plan_file}: the plan's sources {sorted(names)} differ from the config's "
                          f"{sorted(s.name for s in cfg.sources)}")
    for s in given_plan["sources"]:
        measured = sum(c["tokens"] for c in sizes.get(s["name"], []))
        if s["unique_tokens"] and abs(measured - s["unique_tokens"]) > cfg.plan.tolerance * s["unique_tokens"]:
            warnings.append(f"{s['name']}: the plan assumed {s['unique_tokens']:.6g} unique tokens, the data "
                            f"has {measured:.6g}; epochs change accordingly")
    return given_plan, given_plan, warnings + list(given_plan.get("warnings", []))


def _write_shards(spark: SparkSession, cfg: MixtureConfig, dest: str, rows: DataFrame, sel, facts: dict) -> dict:
    """Write the ordered rows as shards, compare what was written with the plan, commit; the manifest."""
    fs = HadoopFS(spark, dest)
    with StagedOutput(spark, dest) as staged:
        temp = staged.path
        rows.write.mode("overwrite").option("compression", cfg.build.compression).parquet(f"{temp}/_shards")
        shard_files = _rename_shards(fs, f"{temp}/_shards", f"{temp}/data")
        realised, shards = _realised(spark, f"{temp}/data")
        report, failures = _compare(sel, realised, cfg.plan.tolerance)
        if failures:
            raise MixtureError("mixture misses its plan beyond tolerance (nothing written):\n" + "\n".join(failures)
                               + "\nset plan.exact_tokens: true for exact prefix selection, or raise plan.tolerance")
        manifest = {
            "tokenmill_version": __version__, "name": cfg.name, "fingerprint": facts["fingerprint"],
            "config_file": facts["config_file"], "config": cfg.model_dump(mode="json"),
            "seed": cfg.plan.seed, "tolerance": cfg.plan.tolerance, "order": cfg.build.order,
            "planned_tokens": facts["planned_tokens"],
            "realised_tokens": sum(r["realised_tokens"] for r in report.values()),
            "rows": sum(r["rows"] for r in report.values()), "sources": report,
            "shards": shards, "n_shards": len(shard_files), "shard_tokens_target": cfg.build.shard_tokens,
            "plan": facts["plan"], "warnings": facts["warnings"], "versions": versions(spark),
            "spark": {"master": spark.sparkContext.master, "app_id": spark.sparkContext.applicationId},
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_seconds": round(time.time() - facts["started"], 3),
        }
        fs.write_text(f"{temp}/plan.json", json.dumps(facts["plan"], indent=2, default=str) + "\n")
        from ..report.html import report_beside

        report_beside(manifest, temp, dest)
        staged.commit(manifest)
    return manifest


def _rename_shards(fs: HadoopFS, staging: str, data: str) -> list[str]:
    """part-00003-<uuid>.zstd.parquet -> shard-00003-of-00010.parquet (non-empty partitions only)."""
    parts = [p for p, _, _ in fs.list_files(staging, recursive=False) if os.path.basename(p).startswith("part-")]
    fs.mkdirs(data)
    names = []
    for i, p in enumerate(sorted(parts)):
        name = f"shard-{i:05d}-of-{len(parts):05d}.parquet"
        fs.rename(p, f"{data}/{name}")
        names.append(name)
    fs.delete(staging)
    return names


def _realised(spark: SparkSession, data: str) -> tuple[dict, list[dict]]:
    df = spark.read.parquet(data)
    by_source = {r[SOURCE]: r.asDict() for r in df.groupBy(SOURCE).agg(
        F.sum(N_TOKENS).alias("tokens"), F.count("*").alias("rows"),
        F.sum((F.col(PASS_IDX) == 0).cast("long")).alias("docs_used"),
        F.max(PASS_IDX).alias("max_pass")).collect()}  # small: one row per source
    shards = [{"file": r["f"], "rows": r["rows"], "tokens": r["tokens"]} for r in df.groupBy(
        F.col("_metadata.file_name").alias("f")).agg(F.count("*").alias("rows"), F.sum(N_TOKENS).alias("tokens"))
        .orderBy("f").collect()]  # small: one row per shard
    return by_source, shards


def _compare(sel: dict[str, SourceSelection], realised: dict, tolerance: float) -> tuple[dict, list[str]]:
    """Realised vs planned per source: a Bernoulli source within the tolerance, an exact one within one
    maximum document length (docs/scaling-and-mixing.md §8.4)."""
    report, failures = {}, []
    for name, s in sel.items():
        r = realised.get(name, {})
        got = float(r.get("tokens") or 0)
        dev = got - s.target
        rel = dev / s.target if s.target else 0.0
        allowed = tolerance * s.target if s.method == "bernoulli" else float(s.max_tokens)
        ok = abs(dev) <= allowed + 1e-9
        report[name] = {"planned_tokens": s.target, "realised_tokens": got, "deviation_tokens": dev,
                        "deviation": rel, "allowed_deviation_tokens": allowed, "method": s.method,
                        "epochs": s.target / s.unique_tokens if s.unique_tokens else 0.0,
                        "unique_tokens": s.unique_tokens, "docs": s.docs, "docs_used": r.get("docs_used") or 0,
                        "rows": r.get("rows") or 0, "max_pass_idx": r.get("max_pass"),
                        "max_doc_tokens": s.max_tokens, "predicted_sd_tokens": s.predicted_sd,
                        "n_tokens_estimated": s.estimated, "ok": ok}
        if not ok:
            failures.append(f"  {name}: planned {s.target:.6g}, realised {got:.6g} ({rel:+.3%}; {s.method}, "
                            f"allowed ±{allowed:.6g})")
    return report, failures


def format_build(manifest: dict) -> str:
    head = f"{'source':<34} {'planned':>12} {'realised':>12} {'dev':>8} {'method':>12} {'rows':>9} {'docs':>8}"
    lines = [head, "-" * len(head)]
    for name, r in manifest["sources"].items():
        lines.append(f"{name[:34]:<34} {r['planned_tokens']:>12,.0f} {r['realised_tokens']:>12,.0f} "
                     f"{r['deviation']:>+8.3%} {r['method']:>12} {r['rows']:>9,} {r['docs_used']:>8,}")
    lines.append("-" * len(head))
    lines.append(f"{'total':<34} {manifest['planned_tokens']:>12,.0f} {manifest['realised_tokens']:>12,.0f}"
                 f"{'':>9} {'':>12} {manifest['rows']:>9,}")
    lines.append(f"\n{manifest['n_shards']} shards (target {manifest['shard_tokens_target']:,.0f} tokens each), "
                 f"seed {manifest['seed']}, order {manifest['order']}")
    for w in manifest.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)
