"""Pipeline stages for instruction data: aim `text` at a part of each row (so the dedup, decontamination,
langid and quality stages work on prompts or responses unchanged), remove rows with problems or out of
length, render conversations with a chat template, and assign deterministic splits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ..pipeline.stage import (
    ArrowStep,
    StageContext,
    StageParams,
    arrow_form,
    live,
    map_batches,
    mark_removed,
    register,
)
from ..schema import (
    ANSWER,
    CHOSEN,
    ID,
    MESSAGES,
    META,
    PROMPT,
    QUESTION,
    REJECTED,
    REMOVED_BY,
    SOLUTION,
    SOURCE,
    SPLIT,
    TEXT,
)
from .checks import DESCRIPTIONS, first_problem
from .formats import use_of
from .templates import TEMPLATES

Part = Literal["all", "prompt", "response", "chosen", "rejected", "answer"]


def _join(msgs: Column) -> Column:
    return F.array_join(F.transform(msgs, lambda x: F.coalesce(x.content, F.lit(""))), "\n\n")


def part_text(use: str, part: str) -> Column:
    """The content of one part of each row as a string, Spark-native: `prompt` (everything the model is
    given), `response` (what it is trained to write), `all`; DPO also `chosen` / `rejected`, GRPO `answer`."""
    if use == "sft":
        m = F.col(MESSAGES)
        if part == "prompt":
            return _join(F.filter(m, lambda x: x.role != "assistant"))
        if part in ("response", "chosen"):
            return _join(F.filter(m, lambda x: x.role == "assistant"))
        if part == "all":
            return _join(m)
    elif use == "dpo":
        parts = {"prompt": _join(F.col(PROMPT)), "chosen": _join(F.col(CHOSEN)), "rejected": _join(F.col(REJECTED))}
        parts["response"] = F.concat_ws("\n\n", parts["chosen"], parts["rejected"])
        parts["all"] = F.concat_ws("\n\n", parts["prompt"], parts["response"])
        if part in parts:
            return parts[part]
    else:
        q, a, s = F.col(QUESTION), F.col(ANSWER), F.col(SOLUTION)
        parts = {"prompt": q, "response": F.coalesce(s, a), "answer": a, "all": F.concat_ws("\n\n", q, F.coalesce(s, a))}
        if part in parts:
            return parts[part]
    raise ValueError(f"{use} rows have no part {part!r}")


def _use(df: DataFrame, stage: str) -> str:
    use = use_of(df.columns)
    if use is None:
        raise ValueError(f"{stage}: the rows are not instruction data (no messages / prompt,chosen,rejected / "
                         "question,answer,solution columns); give the source an `instruct:` mapping")
    return use


class InstructTextParams(StageParams):
    part: Part = "all"


@register("instruct_text", "annotate", InstructTextParams, requires=[ID])
def instruct_text(ctx: StageContext, df: DataFrame, params: InstructTextParams) -> DataFrame:
    """Set `text` to one part of each instruction row (prompt, response, all, ...) for the text stages after it."""
    use = _use(df, ctx.label)
    ctx.report("part", params.part)
    return df.withColumn(TEXT, F.when(live(df), part_text(use, params.part)))


class InstructFilterParams(StageParams):
    """Remove rows with the named problems (checks.py) or outside the length limits."""

    problems: list[str] = Field(default_factory=lambda: sorted(DESCRIPTIONS))  # default: every problem
    math: bool = True  # GRPO: answers must be numbers or expressions (False: short strings)
    min_chars: dict[str, int] = Field(default_factory=dict)  # part -> minimum characters, e.g. {response: 1}
    max_chars: dict[str, int] = Field(default_factory=dict)  # part -> maximum characters
    max_tokens: int | None = Field(default=None, gt=0)  # the whole row (all parts), with `tokenizer`
    tokenizer: str | None = None

    @model_validator(mode="after")
    def _known(self):
        unknown = [p for p in self.problems if p not in DESCRIPTIONS]
        if unknown:
            raise ValueError(f"unknown problem(s) {unknown}; known: {', '.join(sorted(DESCRIPTIONS))}")
        if self.max_tokens and not self.tokenizer:
            raise ValueError("max_tokens needs `tokenizer` (a local tokenizer directory)")
        return self


@register("instruct_filter", "filter", InstructFilterParams, requires=[ID])
def instruct_filter(ctx: StageContext, df: DataFrame, params: InstructFilterParams) -> DataFrame:
    """Remove rows with the chosen problems (reason: the first problem found) or out of the length limits."""
    use = _use(df, ctx.label)
    from .checks import NAMES

    names = [p for p in params.problems if p in NAMES[use]]
    out = mark_removed(df, None, ctx.label, F.when(live(df), first_problem(use, params.math, names)))
    for part, limit in sorted(params.min_chars.items()):
        out = mark_removed(out, F.length(part_text(use, part)) < limit, ctx.label, f"{part}_too_short")
    for part, limit in sorted(params.max_chars.items()):
        out = mark_removed(out, F.length(part_text(use, part)) > limit, ctx.label, f"{part}_too_long")
    if params.max_tokens:
        from ..tokens.count import ship, tokens_column

        spec = ship(ctx.spark, params.tokenizer)
        n = tokens_column(F.when(F.col(REMOVED_BY).isNull(), part_text(use, "all")), spec)
        out = mark_removed(out, n > params.max_tokens, ctx.label, "too_many_tokens")
    ctx.report_all({"problems": names, "math": params.math})
    return out


class InstructFormatParams(StageParams):
    """Render conversations as strings: a named template or a tokenizer's chat template. `form: text` gives
    one training string per SFT conversation (in `column`); `form: strings` gives TRL's standard
    (non-conversational) columns: SFT `prompt_text` / `completion_text` (the prompt ends where the final
    reply starts), DPO `prompt_text` / `chosen_text` / `rejected_text`."""

    template: str = "chatml"  # chatml | llama2 | alpaca, or a local tokenizer directory with a chat_template
    form: Literal["text", "strings"] = "text"
    column: str = TEXT
    add_generation_prompt: bool = False

    def unstamped(self) -> list[str]:
        return [] if self.template not in TEMPLATES else [self.template]

    def outputs(self) -> list[str]:
        return [self.column] if self.form == "text" else [PROMPT_TEXT, COMPLETION_TEXT, CHOSEN_TEXT, REJECTED_TEXT]


PROMPT_TEXT, COMPLETION_TEXT, CHOSEN_TEXT, REJECTED_TEXT = "prompt_text", "completion_text", "chosen_text", "rejected_text"
STRING_COLUMNS = {"sft": (PROMPT_TEXT, COMPLETION_TEXT), "dpo": (PROMPT_TEXT, CHOSEN_TEXT, REJECTED_TEXT)}


def _chatml(msgs: Column, add_generation_prompt: bool) -> Column:
    """templates.render(messages, "chatml") as a Spark expression."""
    turn = F.transform(msgs, lambda x: F.concat(F.lit("<|im_start|>"), F.coalesce(x.role, F.lit("None")), F.lit("\n"),
                                                F.coalesce(x.content, F.lit("None")), F.lit("<|im_end|>\n")))
    text = F.array_join(turn, "")
    return F.concat(text, F.lit("<|im_start|>assistant\n")) if add_generation_prompt else text


def _strings(row: dict, use: str, render_fn) -> dict[str, str]:
    """TRL's standard columns of one row (raises ValueError when the row has no reply to split off)."""
    if use == "sft":
        msgs = row[MESSAGES]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            raise ValueError("no assistant reply after a prompt to split off as the completion")
        return {PROMPT_TEXT: render_fn(msgs[:last], True), COMPLETION_TEXT: msgs[last]["content"]}
    return {PROMPT_TEXT: render_fn(row[PROMPT], True),
            CHOSEN_TEXT: "\n\n".join(m["content"] for m in row[CHOSEN]),
            REJECTED_TEXT: "\n\n".join(m["content"] for m in row[REJECTED])}


@register("instruct_format", "annotate", InstructFormatParams,
          requires=lambda p: [MESSAGES] if p.form == "text" else [], adds=lambda p: p.outputs()[:1])
def instruct_format(ctx: StageContext, df: DataFrame, params: InstructFormatParams) -> DataFrame:
    """Conversations -> templated strings (a row the template cannot express is removed with its reason)."""
    import pyarrow as pa
    from pyspark.sql import types as T

    use = _use(df, ctx.label)
    if params.form == "text" and use != "sft":
        raise ValueError(f"{ctx.label}: form text renders SFT conversations; use form: strings for {use}")
    if params.form == "strings" and use not in STRING_COLUMNS:
        raise ValueError(f"{ctx.label}: form strings is for sft or dpo rows, not {use}")
    outputs = [params.column] if params.form == "text" else list(STRING_COLUMNS[use])
    inputs = [MESSAGES] if use == "sft" else [PROMPT, CHOSEN, REJECTED]
    named = params.template in TEMPLATES
    if params.form == "text" and params.template == "chatml":
        # ChatML expresses every conversation: a Spark-native expression, no Python (measured 5x cheaper
        # than sending the rows through Arrow); the same string as templates.render.
        ctx.report_all({"template": params.template, "form": params.form})
        return df.withColumn(params.column, F.when(live(df), _chatml(F.col(MESSAGES), params.add_generation_prompt)))
    shipped = None
    if not named:
        from ..io.artifacts import ship_dir

        shipped = ship_dir(ctx.spark, params.template, "tokenizer")
    template, add_gen, form = params.template, params.add_generation_prompt, params.form
    err_col = "__format_error"

    def render_batch(batch: pa.RecordBatch) -> dict:
        from .templates import hf_tokenizer, render, render_hf

        tok = None if named else hf_tokenizer(template, shipped)

        def render_fn(msgs, gen):
            return render(msgs, template, gen) if named else render_hf(msgs, tok, gen)

        cols = {name: batch.column(name).to_pylist() for name in inputs}
        removed = batch.column(REMOVED_BY).to_pylist()
        out: dict[str, list] = {name: [] for name in outputs}
        errors = []
        for i, gone in enumerate(removed):
            row = {name: cols[name][i] for name in inputs}
            values, error = {}, None
            if gone is None and all(v is not None for v in row.values()):
                try:
                    values = ({params.column: render_fn(row[MESSAGES], add_gen)} if form == "text"
                              else _strings(row, use, render_fn))
                except Exception as exc:  # noqa: BLE001 - TemplateError, or a chat template's raise_exception
                    error = f"{type(exc).__name__}: {exc}"[:200]
            for name in outputs:
                out[name].append(values.get(name))
            errors.append(error)
        arrays = {name: pa.array(v, pa.string()) for name, v in out.items()}
        arrays[err_col] = pa.array(errors, pa.string())
        return arrays

    fields = [T.StructField(n, T.StringType(), True) for n in outputs] + [T.StructField(err_col, T.StringType(), True)]
    out = map_batches(df, render_batch, fields)
    out = mark_removed(out, F.col(err_col).isNotNull(), ctx.label, "template_cannot_express")
    ctx.report_all({"template": params.template, "form": params.form})
    return out.drop(err_col)


class InstructSplitParams(StageParams):
    """Deterministic splits by a stable hash: fractions, or exact sizes (the rest goes to the first split)."""

    fractions: dict[str, float] = Field(default_factory=dict)  # e.g. {train: 0.9, validation: 0.05, test: 0.05}
    sizes: dict[str, int] = Field(default_factory=dict)  # e.g. {validation: 1000, test: 1000}; rest: `rest`
    rest: str = "train"
    key: Literal["id", "prompt"] = "prompt"  # prompt: the same prompt never lands in two splits
    stratify_by: str | None = SOURCE  # sizes are shared out over this column's values, in proportion
    seed: int = 0

    @model_validator(mode="after")
    def _one(self):
        if bool(self.fractions) == bool(self.sizes):
            raise ValueError("give `fractions` or `sizes` (one of them)")
        if self.fractions and abs(sum(self.fractions.values()) - 1.0) > 1e-9:
            raise ValueError(f"fractions must add up to 1, got {sum(self.fractions.values())}")
        if any(v < 0 for v in self.fractions.values()) or any(v < 0 for v in self.sizes.values()):
            raise ValueError("fractions and sizes must not be negative")
        return self


def _unit(key: Column, seed: int) -> Column:
    """A uniform number in [0, 1) from a stable 64-bit hash of ``key`` (xxhash64, seeded)."""
    h = F.xxhash64(F.lit(seed), key)
    return (F.pmod(h, F.lit(1 << 52)).cast("double")) / float(1 << 52)


@register("instruct_split", "annotate", InstructSplitParams, requires=[ID], adds=[SPLIT])
def instruct_split(ctx: StageContext, df: DataFrame, params: InstructSplitParams) -> DataFrame:
    """A `split` column, the same on every rerun and for any partitioning; the same prompt, the same split."""
    use = _use(df, ctx.label)
    key = F.col(ID) if params.key == "id" else F.sha2(F.lower(F.trim(part_text(use, "prompt"))), 256)
    u = _unit(key, params.seed)
    if params.fractions:
        edges, acc = [], 0.0
        for name, frac in params.fractions.items():
            acc += frac
            edges.append((name, acc))
        expr = None
        for name, edge in edges[:-1]:
            expr = (F.when(u < edge, F.lit(name)) if expr is None else expr.when(u < edge, F.lit(name)))
        last = F.lit(edges[-1][0])
        split = expr.otherwise(last) if expr is not None else last
        ctx.report("fractions", params.fractions)
        return df.withColumn(SPLIT, F.when(live(df), split))
    # Exact sizes: rows ranked by hash within their stratum; each stratum gives its share of every size.
    strat = F.col(params.stratify_by) if params.stratify_by else F.lit("")
    counted = df.withColumn("__u", u).withColumn("__s", strat)
    alive = counted.where(live(counted))
    per = Window.partitionBy("__s")
    ranked = alive.select(ID, "__s", F.row_number().over(per.orderBy("__u", ID)).alias("__rank"),
                          F.count(F.lit(1)).over(per).alias("__n"))
    # Stratum share of each size by largest remainder, computed from the stratum counts.
    counts = {r["__s"]: r["n"] for r in alive.groupBy("__s").agg(F.count(F.lit(1)).alias("n")).collect()}  # small: one row per stratum
    total, want = sum(counts.values()), sum(params.sizes.values())
    if want > total:
        raise ValueError(f"{ctx.label}: sizes add up to {want} but only {total} rows are left")
    bounds = _allocate(counts, params.sizes)
    cases = None
    for stratum, ranges in bounds.items():
        for name, lo, hi in ranges:
            cond = (F.col("__s") == F.lit(stratum)) & (F.col("__rank") > lo) & (F.col("__rank") <= hi)
            cases = F.when(cond, F.lit(name)) if cases is None else cases.when(cond, F.lit(name))
    split = cases.otherwise(F.lit(params.rest)) if cases is not None else F.lit(params.rest)
    assigned = ranked.select(ID, split.alias(SPLIT))
    ctx.report("sizes", params.sizes)
    return counted.drop("__u", "__s").join(assigned, ID, "left")


def _allocate(counts: dict, sizes: dict[str, int]) -> dict:
    """Per stratum, (split, first rank, last rank] for each size, in proportion to the strata (largest
    remainder, so the sizes add up exactly)."""
    total = sum(counts.values())
    strata = sorted(counts, key=lambda s: (s is None, str(s)))
    out: dict = {s: [] for s in strata}
    start = {s: 0 for s in strata}
    for name, size in sizes.items():
        quotas = {s: size * counts[s] / total for s in strata}
        given = {s: int(quotas[s]) for s in strata}
        left = size - sum(given.values())
        for s in sorted(strata, key=lambda s: (-(quotas[s] - given[s]), str(s)))[:left]:
            given[s] += 1
        for s in strata:
            out[s].append((name, start[s], start[s] + given[s]))
            start[s] += given[s]
    return out


# ---- Arrow forms (pipeline.stage.arrow_form): the same rows, computed in the write task ---------------------

def _live(cols: dict):
    import pyarrow.compute as pc

    return pc.is_null(cols[REMOVED_BY])


@arrow_form("instruct_filter", supports=lambda p, columns: use_of(columns) == "sft" and not (
    p.min_chars or p.max_chars or p.max_tokens))
def instruct_filter_arrow(ctx: StageContext, params: InstructFilterParams, columns: list[str]) -> ArrowStep | None:
    """SFT rows, problems only (length limits need Spark)."""
    if use_of(columns) != "sft" or params.min_chars or params.max_chars or params.max_tokens:
        return None
    from .checks import NAMES

    names = [p for p in params.problems if p in NAMES["sft"]]
    tag = f"{ctx.label}:"

    def fn(cols: dict) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from .arrow_checks import first_problem as first
        from .arrow_checks import sft_problems

        live = np.asarray(_live(cols), dtype=bool)
        reason = first(sft_problems(cols[MESSAGES], cols.get(META)), names, live)
        cols[REMOVED_BY] = pc.coalesce(cols[REMOVED_BY], pc.binary_join_element_wise(pa.scalar(tag), reason, ""))

    ctx.report_all({"problems": names, "math": params.math})
    return ArrowStep([], fn)


@arrow_form("instruct_format", supports=lambda p, columns: use_of(columns) == "sft" and p.form == "text"
            and p.template == "chatml")
def instruct_format_arrow(ctx: StageContext, params: InstructFormatParams, columns: list[str]) -> ArrowStep | None:
    """ChatML into one text column (other templates and forms need the per-row renderer)."""
    from pyspark.sql import types as T

    if use_of(columns) != "sft" or params.form != "text" or params.template != "chatml":
        return None
    column, gen = params.column, params.add_generation_prompt

    def fn(cols: dict) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        from .arrow_checks import chatml

        text = chatml(cols[MESSAGES], gen)
        cols[column] = pc.if_else(_live(cols), text, pa.scalar(None, pa.string()))

    ctx.report_all({"template": params.template, "form": params.form})
    return ArrowStep([T.StructField(column, T.StringType(), True)], fn)
