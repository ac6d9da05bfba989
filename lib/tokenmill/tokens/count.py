"""Token counts as columns: a real tokenizer over Arrow batches, or `bytes / rho` calibrated per source.

`rho` (UTF-8 bytes per token) differs by source, language and tokenizer (Dolma: 2.5 for code, about 4 for
web text with the Llama tokenizer), so it is measured per source on a sample with the real tokenizer, and
the estimator's error is measured on a held-out half of that sample (docs/scaling-and-mixing.md §8.4–8.5).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..io.artifacts import ship_dir
from ..schema import ID, N_BYTES, N_TOKENS, N_TOKENS_ESTIMATED, SOURCE, TEXT
from ..text.hashing import unit_hash
from .tokenizer import TokenizerSpec, count_tokens

log = logging.getLogger("tokenmill.tokens")



def ship(spark: SparkSession, path: str, add_special_tokens: bool = False, parallel: bool = False) -> TokenizerSpec:
    """A spec for ``path``; on a cluster a local tokenizer directory is shipped to every executor once."""
    shipped = ship_dir(spark, path, "tokenizer")
    return TokenizerSpec(path=os.path.abspath(path) if os.path.isdir(path) else path,
                         add_special_tokens=add_special_tokens, shipped_name=shipped, parallel=parallel)


def tokens_column(text: Column | str, spec: TokenizerSpec) -> Column:
    """`n_tokens` from the real tokenizer: one Arrow batch at a time, the tokenizer loaded once per worker."""

    def count(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for arr in batches:
            yield pa.array(count_tokens(arr.to_pylist(), spec), type=pa.int64())

    udf = arrow_udf(count, "long")  # Iterator[pa.Array] -> Iterator[pa.Array]: the scalar-iterator form
    return udf(F.col(text) if isinstance(text, str) else text)


def bytes_column(text: Column | str) -> Column:
    col = F.col(text) if isinstance(text, str) else text
    return F.octet_length(col).cast("long")


def estimate_column(n_bytes: Column, rho: Column) -> Column:
    """`round(bytes / rho)`: the calibrated estimate (at least 1 token for a non-empty text)."""
    est = F.round(n_bytes / rho).cast("long")
    return F.when(n_bytes > 0, F.greatest(est, F.lit(1))).otherwise(F.lit(0)).cast("long")


def calibrate(df: DataFrame, spec: TokenizerSpec, sample_docs: int = 10_000, seed: int = 0) -> dict[str, dict]:
    """Per source: rho = bytes/token on a stable-hash sample of about ``sample_docs`` documents, and the
    relative error of the total when rho fitted on one half of the sample predicts the other half."""
    live = df.where(F.col(TEXT).isNotNull())
    sizes = {r[SOURCE]: r["n"] for r in live.groupBy(SOURCE).agg(F.count("*").alias("n")).collect()}  # small: one row per source
    if not sizes:
        return {}
    rate = F.create_map(*[x for s, n in sizes.items() for x in (F.lit(s), F.lit(min(1.0, sample_docs / max(n, 1))))])
    u = unit_hash(seed, SOURCE, ID)
    sample = (live.where(u < rate[F.col(SOURCE)])
              .select(SOURCE, (unit_hash(seed + 1, ID) < 0.5).alias("fit"),
                      bytes_column(TEXT).alias("b"), tokens_column(TEXT, spec).alias("t")))
    rows = (sample.groupBy(SOURCE, "fit").agg(F.count("*").alias("docs"), F.sum("b").alias("bytes"),
                                              F.sum("t").alias("tokens"))
            .collect())  # small: two rows per source
    parts: dict[str, dict[bool, tuple[int, int, int]]] = {}
    for r in rows:
        parts.setdefault(r[SOURCE], {})[r["fit"]] = (r["docs"], r["bytes"] or 0, r["tokens"] or 0)
    out = {}
    for source, halves in sorted(parts.items()):
        docs = sum(h[0] for h in halves.values())
        total_b = sum(h[1] for h in halves.values())
        total_t = sum(h[2] for h in halves.values())
        rho = total_b / total_t if total_t else None
        error = None
        if True in halves and False in halves and halves[True][2] and halves[False][2]:
            rho_fit = halves[True][1] / halves[True][2]
            error = abs(halves[False][1] / rho_fit - halves[False][2]) / halves[False][2]
        out[source] = {"rho": rho, "sample_docs": docs, "source_docs": sizes[source], "sample_bytes": total_b,
                       "sample_tokens": total_t, "holdout_error": error}
        log.info("calibrated %s: %.4f bytes/token on %d docs (held-out error %s)", source, rho or 0, docs,
                 f"{error:.3%}" if error is not None else "n/a")
    return out


def token_totals(df: DataFrame) -> dict[str, dict]:
    """Documents, bytes and tokens per source (one small aggregation)."""
    aggs = [F.count("*").alias("docs"), F.sum(N_TOKENS).alias("tokens")]
    if N_BYTES in df.columns:
        aggs.append(F.sum(N_BYTES).alias("bytes"))
    if N_TOKENS_ESTIMATED in df.columns:
        aggs.append(F.max(F.col(N_TOKENS_ESTIMATED).cast("int")).alias("estimated"))
    out = {}
    for r in df.groupBy(SOURCE).agg(*aggs).collect():  # small: one row per source
        d = r.asDict()
        out[d.pop(SOURCE)] = {"docs": d["docs"], "bytes": d.get("bytes"), "tokens": d["tokens"] or 0,
                              "estimated": bool(d.get("estimated") or 0),
                              "bytes_per_token": (d["bytes"] / d["tokens"]) if d.get("bytes") and d["tokens"] else None}
    return dict(sorted(out.items()))
