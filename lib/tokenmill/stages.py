"""Built-in stages: `read` (all configured sources) and `write` (the output) here; the others register
themselves in their packages, imported below so a config can name them."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame

from .classify import stage as _classify  # noqa: F401  (registers `quality_classifier`, `quality_select`)
from .dedup import decontam_stage as _decontam  # noqa: F401  (registers `decontaminate`)
from .dedup import exact_stage as _exact  # noqa: F401  (registers `exact_dedup`)
from .dedup import minhash_stage as _minhash  # noqa: F401  (registers `minhash_dedup`)
from .io.sources import read_source
from .langid import stage as _langid  # noqa: F401  (registers `langid`, `language_filter`)
from .quality import lists_stage as _lists  # noqa: F401  (registers `url_filter`, `word_filter`)
from .quality import stage as _quality  # noqa: F401  (registers `quality_signals`, `quality_filter`)
from .stage import Deferred, StageContext, StageParams, WriteParams, register
from .tokens import stage as _tokens  # noqa: F401  (registers `tokens`)


@register("read", "read")
def read(ctx: StageContext, df: DataFrame | None, params: StageParams) -> DataFrame:
    """Read every configured source into the canonical schema; bad records become counted skips."""
    frames = []
    # Counts every file a task opens: equal to the number of files unless something reads the input twice.
    opens = ctx.spark.sparkContext.accumulator(0)
    for i, src in enumerate(ctx.pipeline.sources):
        frames.append(read_source(ctx.spark, src, f"{ctx.config_path}: sources[{i}]", ctx.work_dir, opens))
    ctx.reports["read"] = {"files_opened": Deferred(lambda: opens.value)}
    return reduce(lambda a, b: a.unionByName(b), frames)


@register("write", "write", WriteParams)
def write(ctx: StageContext, df: DataFrame | None, params: WriteParams) -> DataFrame:
    """Pass-through: the pipeline writes the result with these params (see io/writer.py)."""
    return df

