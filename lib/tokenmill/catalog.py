"""The catalogue: which modules bring the built-in stages and jobs, loaded by name when first needed.

The stage contract (`pipeline/stage.py`), the engine, `io/` and the CLI import no feature package; they
ask this module, which imports the feature modules listed here (and any installed plug-in that declares
an entry point in the `tokenmill.stages` or `tokenmill.jobs` group). Adding a stage or a job to tokenmill
is one line here plus its own module.
"""

from __future__ import annotations

import importlib
import importlib.metadata

# Modules that register stages (`@register(...)` at import).
STAGE_MODULES = (
    "tokenmill.pipeline.builtin",  # read, write
    "tokenmill.langid.stage",  # langid, language_filter
    "tokenmill.quality.stage",  # quality_signals, quality_filter
    "tokenmill.quality.url_filter",  # url_filter
    "tokenmill.quality.word_filter",  # word_filter
    "tokenmill.classify.stage",  # quality_classifier, quality_select
    "tokenmill.dedup.exact_stage",  # exact_dedup
    "tokenmill.dedup.minhash_stage",  # minhash_dedup
    "tokenmill.decontam.stage",  # decontaminate
    "tokenmill.tokens.stage",  # tokens
    "tokenmill.instruct.read",  # the reader of sources with an `instruct` mapping (SFT / DPO / GRPO rows)
    "tokenmill.instruct.stage",  # instruct_text, instruct_filter, instruct_format, instruct_split
    "tokenmill.multimodal.audio_stage",  # audio_features
    "tokenmill.multimodal.image_text",  # caption_clean, image_text_filter, image_check
)

# Modules that define command-line jobs: each has `JOBS`, a list of `cli.Job`, in the order `--help` shows.
JOB_MODULES = (
    "tokenmill.pipeline.job",  # pipeline
    "tokenmill.pipeline.presets",  # presets
    "tokenmill.tokens.job",  # count_tokens
    "tokenmill.mixing.job",  # plan_mixture, build_mixture
    "tokenmill.mixing.recipe",  # prepare
    "tokenmill.decontam.job",  # decontaminate
    "tokenmill.langid.job",  # langid_eval
    "tokenmill.quality.job",  # quality_rules
    "tokenmill.dedup.job",  # dedup_minhash, minhash_bands
    "tokenmill.classify.job",  # train_quality
    "tokenmill.sample.job",  # sample
    "tokenmill.extraction.job",  # extract_eval
    "tokenmill.instruct.job",  # validate_dataset, convert_format, split_dataset, filter_dataset, export
    "tokenmill.multimodal.job",  # audio_features, image_text
    "tokenmill.report.job",  # explain, diff
    "tokenmill.pipeline.gc",  # gc
)

_loaded: set[str] = set()


def _plugins(group: str) -> list[str]:
    return [ep.value.split(":")[0] for ep in importlib.metadata.entry_points(group=group)]


def load_stages() -> None:
    """Import every module that registers stages (once)."""
    for name in (*STAGE_MODULES, *_plugins("tokenmill.stages")):
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)


def load_jobs() -> list:
    """Every job of every job module, in catalogue order."""
    jobs = []
    for name in (*JOB_MODULES, *_plugins("tokenmill.jobs")):
        jobs.extend(importlib.import_module(name).JOBS)
    return jobs
