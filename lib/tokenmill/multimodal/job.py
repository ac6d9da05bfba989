"""The any-to-text jobs: `audio_features` (audio -> log-mel spectrograms + text) and `image_text` (image–caption
pairs cleaned, filtered and deduplicated). Each builds a pipeline (read, the stages, write) from its options,
prints the config it wrote, and runs it with the ordinary engine (manifest, counts per reason, atomic commit,
resume); `--config` runs a full pipeline config instead, `--set` changes the source or the pipeline.
"""

from __future__ import annotations

import argparse
import os
import re

from ..cli import Job, spark_args
from ..config import find_named_yaml
from ..errors import ConfigError
from ..io.sources import AUDIO_EXTENSIONS
from ..pipeline.job import quick_config, run_pipeline, write_quick_config
from ..pipeline.plan import SOURCE_PRESET_DIRS


def _name(arg: str) -> str:
    base = os.path.basename(arg.rstrip("/").rstrip("*").rstrip("/")) or arg
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", re.sub(r"\.(jsonl?|parquet|csv|tsv)(\.\w+)?$", "", base)).strip("_") or "source"


def source_entry(arg: str, media: str = "audio") -> dict:
    """``--source``: a source preset name, a folder or glob of media files, or Parquet / JSONL files."""
    try:
        find_named_yaml(arg, SOURCE_PRESET_DIRS, "source preset")
        return {"preset": arg}
    except ConfigError:
        pass
    import fsspec

    fs, _, found = fsspec.get_fs_token_paths(arg)
    if os.path.isdir(arg):
        found = [f for f in fs.find(arg)]
    if not found:
        raise ConfigError(f"--source {arg}: not a source preset or an existing path")
    lower = [f.lower() for f in found]
    entry: dict = {"name": _name(arg), "paths": [arg]}
    if media == "audio" and any(f.endswith(AUDIO_EXTENSIONS) for f in lower):
        entry["format"] = "audio"
    elif any(f.endswith(".parquet") for f in lower):
        entry.update({"format": "parquet", "fields": {"keep_fields": [media]} if media == "audio" else {}})
    elif any(re.search(r"\.jsonl?(\.(gz|zst|bz2|xz))?$", f) for f in lower):
        entry.update({"format": "jsonl", "on_error": "skip"})
    else:
        raise ConfigError(f"--source {arg}: found no {media} files, Parquet or JSONL")
    return entry


def _run(args: argparse.Namespace, stages: list[dict], required: str, media: str) -> int:
    spark = getattr(args, "spark", None)  # a notebook's (or test's) session, left running
    if args.config:
        run_pipeline(args.config, args.overrides, args.spark_profile, args.force, required, spark)
        return 0
    if not args.source:
        raise ConfigError(f"{args.job_name}: give --source (a preset, a folder of files, Parquet/JSONL) or --config")
    pipeline = quick_config(args.job_name, source_entry(args.source, media), stages, args.output, args.overrides)
    path = write_quick_config(pipeline)
    print(f"config   {path}")
    run_pipeline(path, [], args.spark_profile, args.force, required, spark)
    return 0


def _common_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--source", help=f"a source preset (python -m tokenmill presets), a folder or glob of {what}, "
                                    "or Parquet/JSONL files")
    p.add_argument("--config", help="a full pipeline config instead of --source")
    p.add_argument("--output", help="the output folder (default out/<job>/<source>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change the source (fields.text_field=caption, path=/data/x) or the pipeline (stages[1].frames=3000)")
    p.add_argument("--force", action="store_true", help="recompute even if the output is up to date")
    spark_args(p)


# ---- audio_features -------------------------------------------------------------------------------------

def audio_job(args: argparse.Namespace) -> int:
    args.job_name = "audio_features"
    stage = {"stage": "audio_features", "n_mels": args.n_mels, "sample_rate": args.sample_rate,
             "trim_silence": args.trim_silence, "min_seconds": args.min_seconds, "max_seconds": args.max_seconds,
             "too_long": args.too_long}
    if args.frames:
        stage["frames"] = args.frames
    if args.audio:
        stage["audio"] = args.audio
    if args.root:
        stage["root"] = args.root
    return _run(args, [{"stage": "read"}, stage, {"stage": "write", "keep_removed": True}], "audio_features", "audio")


def _audio_args(p: argparse.ArgumentParser) -> None:
    _common_args(p, "audio files (wav, flac, mp3, ogg, opus, m4a, webm)")
    p.add_argument("--audio", help="where each row's audio is: a column ({bytes, path}, bytes or a path; default "
                                   "`audio`) or meta.<key> holding a path (Common Voice: meta.orig_id)")
    p.add_argument("--root", help="the folder relative audio paths are under")
    p.add_argument("--n-mels", type=int, default=80, help="mel bins: 80 (Whisper) or 128 (Whisper large-v3)")
    p.add_argument("--sample-rate", type=int, default=16_000)
    p.add_argument("--frames", type=int, default=None, help="pad or cut every spectrogram to N frames (3000 = 30 s)")
    p.add_argument("--trim-silence", action="store_true", help="trim leading and trailing silence (pydub, -50 dBFS)")
    p.add_argument("--min-seconds", type=float, default=0.0)
    p.add_argument("--max-seconds", type=float, default=1800.0)
    p.add_argument("--too-long", choices=("remove", "cut"), default="remove")


JOBS = [
    Job("audio_features", "audio (files or dataset rows) -> Whisper-compatible log-mel spectrograms with their text",
        _audio_args, audio_job),
]
