"""The instruction-data jobs: validate_dataset, convert_format, split_dataset, filter_dataset and export.

`--source` is a source preset name, a path (JSONL / Parquet files, a folder, a glob, a `save_to_disk`
folder) or a Hugging Face dataset id (from the local hub cache); `--set key=value` changes the source
(`instruct.layout=sharegpt`, `instruct.fields.prompt=question`, `split=test`) or, for keys under `stages`,
`output` and `work_dir`, the pipeline the job runs. convert/split/filter run the ordinary pipeline engine
(manifest, counts per reason, atomic commit, resume), so `--config` takes a full pipeline config instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any

from ..cli import Job, spark_args
from ..config import Strict, apply_override, find_named_yaml, load_yaml
from ..errors import ConfigError
from ..io.sources import Source
from ..pipeline.job import quick_config, write_quick_config
from ..pipeline.plan import SOURCE_PRESET_DIRS
from .layouts import LAYOUTS

LAYOUT_HELP = ", ".join(LAYOUTS)  # every layout the mapper knows


class _SourceModel(Strict):
    source: Source


def _name(arg: str) -> str:
    base = os.path.basename(arg.rstrip("/")) or arg
    base = re.sub(r"\.(jsonl|json|parquet)(\.(gz|zst|bz2|xz))?$", "", base)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_") or "source"


def source_entry(arg: str, use: str) -> dict:
    """The source config of ``--source``: a preset, a path, or a Hugging Face dataset id."""
    entry: dict[str, Any]
    try:
        entry = load_yaml(find_named_yaml(arg, SOURCE_PRESET_DIRS, "source preset"))
    except ConfigError:
        entry = {}
    if not entry:
        import fsspec

        fs, _, found = fsspec.get_fs_token_paths(arg)
        local = os.path.exists(arg)
        if local and os.path.isdir(arg) and any(os.path.exists(os.path.join(arg, n)) for n in
                                                ("dataset_info.json", "state.json", "dataset_dict.json")):
            entry = {"format": "hf", "dataset": arg}
        elif found or local:
            files = [f for f in (fs.find(arg) if local and os.path.isdir(arg) else found)]
            kinds = {"parquet" if f.endswith(".parquet") else "jsonl" for f in files
                     if re.search(r"\.(parquet|jsonl?)(\.(gz|zst|bz2|xz))?$", f)}
            if len(kinds) != 1:
                raise ConfigError(f"--source {arg}: expected JSONL or Parquet files, found "
                                  f"{', '.join(sorted(kinds)) or 'none'}")
            entry = {"format": kinds.pop(), "paths": [arg]}
            if entry["format"] == "jsonl":
                entry["on_error"] = "skip"
        elif re.fullmatch(r"[\w.-]+/[\w.-]+", arg):
            entry = {"format": "hf", "dataset": arg}
        else:
            raise ConfigError(f"--source {arg}: not a source preset, an existing path or a dataset id")
        entry["name"] = _name(arg)
    instruct = dict(entry.get("instruct") or {})
    instruct["for"] = use
    instruct.pop("use", None)
    entry["instruct"] = instruct
    return entry


def build(args: argparse.Namespace, stages: list[dict]) -> dict:
    """The pipeline config of a quick job (one source, ``stages``), --set applied."""
    return quick_config(args.job_name, source_entry(args.source, args.use), stages, getattr(args, "output", None),
                        args.overrides)


def _run(args: argparse.Namespace, stages: list[dict], required: str | None = None):
    from ..pipeline.job import run_pipeline

    spark = getattr(args, "spark", None)  # a notebook's (or test's) session, left running
    if args.config:
        return run_pipeline(args.config, args.overrides, args.spark_profile, args.force, required, spark,
                            quiet=getattr(args, "quiet", False))
    if not args.source or not args.use:
        raise ConfigError(f"{args.job_name}: give --config, or --source and --for")
    pipeline = build(args, stages)
    path = write_quick_config(pipeline)
    print(f"config   {path}")
    return run_pipeline(path, [], args.spark_profile, args.force, required, spark, quiet=getattr(args, "quiet", False))


# ---- validate_dataset -----------------------------------------------------------------------------------

def validate_dataset(source: str, use: str, overrides: list[str] = (), output: str | None = None,
                     spark=None, **options) -> dict:
    """Validate ``source`` for ``use`` (sft, dpo or grpo): the report dict, also written to
    ``<output>/validation.json`` (a committed folder) when ``output`` is given. For notebooks and the CLI."""
    from ..config import validate as check
    from ..pipeline.commit import StagedOutput
    from ..spark import build_session
    from .validate import ValidateOptions, validate

    entry = source_entry(source, use)
    for assignment in overrides:
        entry = apply_override(entry, assignment)
    src = check(_SourceModel, {"source": entry}, f"--source {source}").source
    own = spark is None
    spark = spark or build_session(None, app_name="tokenmill-validate")
    work = f"{(output or f'out/validate/{src.name}').rstrip('/')}.work"
    try:
        report = validate(spark, src, f"--source {source}", os.path.abspath(work), ValidateOptions(use=use, **options),
                          source_arg=source)
        if output:
            with StagedOutput(spark, output) as out:
                from ..io.hadoopfs import HadoopFS

                HadoopFS(spark, out.path).write_text(f"{out.path}/validation.json",
                                                     json.dumps(report, indent=2, ensure_ascii=False) + "\n")
                out.commit({"kind": "validation", "source": source, "for": use,
                            "verdict": report["verdict"]["status"]})
    finally:
        if own:
            spark.stop()
    return report


def validate_job(args: argparse.Namespace) -> int:
    from .validate import UNUSABLE, format_report

    options = {"tokenizer": args.tokenizer, "max_length": args.max_length, "near_threshold": args.near_threshold,
               "langid": not args.no_langid}
    output = args.output or f"out/validate/{_name(args.source)}"
    report = validate_dataset(args.source, args.use, args.overrides, output, **options)
    print(format_report(report))
    print(f"\nreport   {os.path.abspath(output)}/validation.json")
    return 2 if report["verdict"]["status"] == UNUSABLE else 0


def _validate_args(p: argparse.ArgumentParser) -> None:
    _source_args(p, config=False)
    p.add_argument("--tokenizer", default=None, help="a local tokenizer directory, for token lengths")
    p.add_argument("--max-length", type=int, default=4096, help="report the share of rows longer (tokens)")
    p.add_argument("--near-threshold", type=float, default=0.8, help="Jaccard of near-duplicate prompts")
    p.add_argument("--no-langid", action="store_true", help="skip language identification")
    p.add_argument("--output", default=None, help="folder for validation.json (default out/validate/<source>)")


def _source_args(p: argparse.ArgumentParser, config: bool = True) -> None:
    p.add_argument("--source", required=not config,
                   help="a source preset, a path (JSONL/Parquet/save_to_disk folder) or a dataset id in the hub cache")
    p.add_argument("--for", dest="use", choices=("sft", "dpo", "grpo"), required=not config,
                   help="the training method the data is for")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"change the source (instruct.layout=<{LAYOUT_HELP}>, instruct.fields.prompt=question) "
                        "or the pipeline (output=..., stages[1].problems=[...])")
    if config:
        p.add_argument("--config", default=None, help="a full pipeline config instead of --source/--for")
        p.add_argument("--output", default=None, help="the output folder (default out/<job>/<source>)")
        p.add_argument("--force", action="store_true", help="recompute even if the output is up to date")
    spark_args(p)


# ---- convert / split / filter ---------------------------------------------------------------------------

def convert_job(args: argparse.Namespace) -> int:
    args.job_name = "convert_format"
    stages: list[dict] = [{"stage": "read"}]
    if args.to == "text":
        if args.use != "sft" and not args.config:
            raise ConfigError("--to text renders conversations: it needs --for sft (--to strings for dpo)")
        stages.append({"stage": "instruct_format", "template": args.template})
    elif args.to == "strings":
        if args.use == "grpo" and not args.config:
            raise ConfigError("--to strings is for sft (prompt/completion) and dpo (prompt/chosen/rejected)")
        stages.append({"stage": "instruct_format", "template": args.template, "form": "strings"})
    stages.append({"stage": "write", "keep_removed": False})
    result = _run(args, stages)
    if args.export:
        from .export import export_output

        info = export_output(result.output, args.export, f"{result.output.rstrip('/')}-{args.export}",
                             spark_profile=args.spark_profile, spark=getattr(args, "spark", None))
        print(f"exported {info['rows']:,} rows as {args.export} to {info['output']}\nload it  {info['load']}")
    return 0


def _convert_args(p: argparse.ArgumentParser) -> None:
    _source_args(p)
    p.add_argument("--to", choices=("canonical", "text", "strings"), default="canonical",
                   help="canonical: messages (sft) / prompt,chosen,rejected (dpo) / question,answer,solution (grpo); "
                        "text: one templated string per conversation; strings: TRL's standard columns "
                        "(prompt_text + completion_text, or prompt_text + chosen_text + rejected_text)")
    p.add_argument("--template", default="chatml",
                   help="for --to text/strings: chatml, llama2, alpaca, or a local tokenizer directory with a chat_template")
    p.add_argument("--export", choices=("jsonl", "parquet", "hf"), default=None,
                   help="also export the result (beside the output, suffixed with the format)")


def split_job(args: argparse.Namespace) -> int:
    args.job_name = "split_dataset"
    split: dict[str, Any] = {"stage": "instruct_split", "key": args.key}
    if args.sizes:
        split["sizes"] = _pairs(args.sizes, int)
    else:
        split["fractions"] = _pairs(args.fractions, float)
    _run(args, [{"stage": "read"}, split, {"stage": "write", "partition_by": ["split"]}], "instruct_split")
    return 0


def _pairs(text: str, kind) -> dict:
    try:
        return {k.strip(): kind(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise ConfigError(f"expected name=value,name=value, got {text!r}") from None


def _split_args(p: argparse.ArgumentParser) -> None:
    _source_args(p)
    p.add_argument("--fractions", default="train=0.9,validation=0.05,test=0.05")
    p.add_argument("--sizes", default=None, help="exact sizes, e.g. validation=1000,test=1000 (the rest: train)")
    p.add_argument("--key", choices=("prompt", "id"), default="prompt",
                   help="prompt: the same prompt never lands in two splits")


def filter_stages(args: argparse.Namespace) -> list[dict]:
    """What `filter_dataset --source` runs: problems and lengths, exact and near-duplicate prompts, and
    benchmark decontamination of prompts and responses (the text stages, on the message content)."""
    stages: list[dict] = [{"stage": "read"}, {"stage": "instruct_filter"}]
    stages += [{"stage": "instruct_text", "id": "prompt_text", "part": "prompt"},
               {"stage": "exact_dedup", "id": "exact_prompts"},
               {"stage": "minhash_dedup", "id": "near_prompts", "ngram": 3, "threshold": args.near_threshold}]
    stages.append({"stage": "instruct_text", "id": "all_text", "part": "all"})
    if args.benchmarks:
        stages.append({"stage": "decontaminate", "benchmarks": [_benchmark(b) for b in args.benchmarks.split(",")],
                       "action": "remove"})
    stages.append({"stage": "write", "keep_removed": True})
    return stages


def _benchmark(entry: str) -> str | dict:
    """`gsm8k` (a preset, from the hub cache) or `gsm8k=path/to/test.jsonl` (the preset's fields, a local file)."""
    name, _, path = entry.strip().partition("=")
    return {"preset": name, "path": path} if path else name


def filter_job(args: argparse.Namespace) -> int:
    args.job_name = "filter_dataset"
    _run(args, filter_stages(args) if not args.config else [], "instruct_filter")
    return 0


def _filter_args(p: argparse.ArgumentParser) -> None:
    _source_args(p)
    p.add_argument("--near-threshold", type=float, default=0.8, help="Jaccard of near-duplicate prompts")
    p.add_argument("--benchmarks", default=None,
                   help="benchmark presets to decontaminate against, comma-separated (gsm8k,math,humaneval); "
                        "preset=path for a local copy of the test split (gsm8k=data/gsm8k_test.jsonl)")


# ---- export ---------------------------------------------------------------------------------------------

def export_job(args: argparse.Namespace) -> int:
    from .export import export_output

    info = export_output(args.input, args.format, args.output, args.push_to_hub, args.spark_profile,
                         compression=args.compression, separator=args.separator)
    print(f"exported {info['rows']:,} rows as {args.format} to {info['output']}")
    print(f"load it  {info['load']}")
    if info["pushed"]:
        print(info["pushed"])
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="a tokenmill output folder (convert_format, filter_dataset, ...)")
    p.add_argument("--format", choices=("jsonl", "parquet", "hf", "txt"), required=True,
                   help="jsonl / parquet shards, a datasets save_to_disk folder, or txt: per source input.txt + Parquet")
    p.add_argument("--compression", choices=("gzip", "zstd", "none"), default="gzip", help="jsonl: .json.gz, .json.zst or .json")
    p.add_argument("--separator", default="\n\n", help="txt: what separates documents in input.txt")
    p.add_argument("--output", required=True)
    p.add_argument("--push-to-hub", default=None, metavar="REPO_ID",
                   help="also push to the Hugging Face hub (needs HF_TOKEN in the environment)")
    spark_args(p)


JOBS = [
    Job("validate_dataset", "is a dataset ready for SFT / DPO / GRPO, and what to change if not", _validate_args,
        validate_job),
    Job("convert_format", "instruction data in its own layout -> the canonical format (or templated text)",
        _convert_args, convert_job, own_dry_run=True),
    Job("split_dataset", "deterministic train/validation/test splits of instruction data", _split_args, split_job, own_dry_run=True),
    Job("filter_dataset", "remove problem rows, duplicate prompts and benchmark items from instruction data",
        _filter_args, filter_job, own_dry_run=True),
    Job("export", "a tokenmill output as JSONL, Parquet or a datasets folder (and to the hub)", _export_args,
        export_job),
]
