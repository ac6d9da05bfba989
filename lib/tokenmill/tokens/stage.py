"""The `tokens` stage: `n_tokens`, `n_bytes` and `n_tokens_estimated` on every live document."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..errors import ConfigError
from ..pipeline.stage import (
    ArrowStep,
    StageContext,
    StageParams,
    Written,
    arrow_form,
    live,
    live_arrow,
    register,
)
from ..schema import SOURCE, TEXT
from .count import (
    N_BYTES,
    N_TOKENS,
    N_TOKENS_ESTIMATED,
    bytes_column,
    calibrate,
    estimate_column,
    ship,
    token_totals,
    tokens_column,
)
from .tokenizer import count_tokens


class TokensParams(StageParams):
    """Count with a real tokenizer, or estimate `bytes / rho` with rho given or calibrated per source."""

    method: Literal["tokenizer", "estimate"] = "tokenizer"
    tokenizer: str | None = None  # a tokenizer directory, fsspec URL or cached hub id
    add_special_tokens: bool = False
    parallel: bool = False
    rho: dict[str, float] = Field(default_factory=dict)  # bytes per token, per source (estimate)
    default_rho: float | None = Field(default=None, gt=0)  # for sources without their own rho (no calibration)
    calibration_docs: int = Field(default=10_000, gt=0)  # per source (docs/scaling-and-mixing.md §8.4: at least 10k)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if self.method == "tokenizer" and not self.tokenizer:
            raise ValueError("method tokenizer needs `tokenizer` (a directory or a cached hub id)")
        if any(v <= 0 for v in self.rho.values()):
            raise ValueError("rho values must be > 0")
        return self


def summarize_tokens(out: Written) -> dict:
    """The manifest's `output.tokens_by_source` (documents, bytes, tokens) and `output.tokens`."""
    if N_TOKENS not in out.kept.columns:
        return {}
    by_source = token_totals(out.kept)
    return {"tokens_by_source": by_source, "tokens": sum(v["tokens"] for v in by_source.values())}


@register("tokens", "annotate", TokensParams, requires=[TEXT, SOURCE], adds=[N_BYTES, N_TOKENS, N_TOKENS_ESTIMATED],
          summarize=summarize_tokens)
def tokens(ctx: StageContext, df: DataFrame, params: TokensParams) -> DataFrame:
    """Token counts per document (removed documents get none), per-source totals go to the manifest."""
    text = F.when(live(df), F.col(TEXT))
    df = df.withColumn(N_BYTES, F.when(live(df), bytes_column(TEXT)))
    report: dict = {"method": params.method, "tokenizer": params.tokenizer,
                    "add_special_tokens": params.add_special_tokens}
    if params.method == "tokenizer":
        spec = ship(ctx.spark, params.tokenizer, params.add_special_tokens, params.parallel)
        df = df.withColumn(N_TOKENS, tokens_column(text, spec)).withColumn(N_TOKENS_ESTIMATED, F.lit(False))
    else:
        rho = dict(params.rho)
        sources = [s.name for s in ctx.sources]
        missing = [s for s in sources if s not in rho]
        if missing and params.default_rho is None:
            if not params.tokenizer:
                raise ConfigError(f"{ctx.config_path}: stage tokens: no rho for {', '.join(missing)}; give `rho`, "
                                  f"`default_rho`, or a `tokenizer` to calibrate with")
            spec = ship(ctx.spark, params.tokenizer, params.add_special_tokens, params.parallel)
            measured = calibrate(df.where(live(df) & F.col(SOURCE).isin(missing)), spec,
                                 params.calibration_docs, params.seed)
            report["calibration"] = measured
            rho.update({s: m["rho"] for s, m in measured.items() if m["rho"]})
        report["rho"] = rho
        report["default_rho"] = params.default_rho
        mapping = F.create_map(*[x for s, r in sorted(rho.items()) for x in (F.lit(s), F.lit(float(r)))]) \
            if rho else None
        rho_col = mapping[F.col(SOURCE)] if mapping is not None else F.lit(None).cast("double")
        if params.default_rho is not None:
            rho_col = F.coalesce(rho_col, F.lit(params.default_rho))
        df = (df.withColumn(N_TOKENS, F.when(live(df), estimate_column(F.col(N_BYTES), rho_col)))
              .withColumn(N_TOKENS_ESTIMATED, F.lit(True)))
    ctx.report_all(report)
    return df


@arrow_form("tokens", supports=lambda p, columns: p.method == "tokenizer")
def tokens_arrow(ctx: StageContext, params: TokensParams, columns: list[str]) -> ArrowStep | None:
    """Counting with the real tokenizer inside a fused pass (an estimate may need a calibration job)."""
    from pyspark.sql import types as T

    if params.method != "tokenizer":
        return None
    spec = ship(ctx.spark, params.tokenizer, params.add_special_tokens, params.parallel)

    def fn(cols: dict) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        text = live_arrow(cols, TEXT)
        cols[N_BYTES] = pc.binary_length(text).cast(pa.int64())  # UTF-8 bytes, null for removed rows
        cols[N_TOKENS] = pa.array(count_tokens(text.to_pylist(), spec), pa.int64())
        cols[N_TOKENS_ESTIMATED] = pa.array([False] * len(text), pa.bool_())

    ctx.report_all({"method": params.method, "tokenizer": params.tokenizer,
                    "add_special_tokens": params.add_special_tokens})
    return ArrowStep([T.StructField(N_BYTES, T.LongType(), True), T.StructField(N_TOKENS, T.LongType(), True),
                      T.StructField(N_TOKENS_ESTIMATED, T.BooleanType(), False)], fn)
