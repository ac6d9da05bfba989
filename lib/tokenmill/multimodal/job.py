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
        import pyarrow.parquet as pq

        first = next(f for f in found if f.lower().endswith(".parquet"))
        with fs.open(first, "rb") as handle:
            names = pq.read_schema(handle).names
        entry.update({"format": "parquet", "fields": {"keep_fields": [media]} if media in names else {}})
    elif any(re.search(r"\.jsonl?(\.(gz|zst|bz2|xz))?$", f) for f in lower):
        entry.update({"format": "jsonl", "on_error": "skip"})
    else:
        raise ConfigError(f"--source {arg}: found no {media} files, Parquet or JSONL")
    return entry


def _run(args: argparse.Namespace, stages: list[dict], required: str, media: str) -> int:
    spark = getattr(args, "spark", None)  # a notebook's (or test's) session, left running
    if args.config:
        run_pipeline(args.config, args.overrides, args.spark_profile, args.force, required, spark,
                     quiet=getattr(args, "quiet", False))
        return 0
    if not args.source:
        raise ConfigError(f"{args.job_name}: give --source (a preset, a folder of files, Parquet/JSONL) or --config")
    pipeline = quick_config(args.job_name, source_entry(args.source, media), stages, args.output, args.overrides)
    path = write_quick_config(pipeline)
    print(f"config   {path}")
    run_pipeline(path, [], args.spark_profile, args.force, required, spark, quiet=getattr(args, "quiet", False))
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


# ---- image_text -----------------------------------------------------------------------------------------

def image_text_stages(args: argparse.Namespace) -> list[dict]:
    """read -> caption_clean -> [image_check] -> [langid, language_filter] -> image_text_filter -> exact dedup of
    url / image bytes / caption -> near-duplicate captions -> write."""
    stages: list[dict] = [{"stage": "read"}, {"stage": "caption_clean"}]
    if args.check_images:
        check: dict = {"stage": "image_check"}
        if args.resize:
            check["resize"] = args.resize
        stages.append(check)
    if args.languages:
        stages += [{"stage": "langid", "backend": args.langid_backend, "min_letters": 3},
                   {"stage": "language_filter", "languages": args.languages.split(","), "min_score": args.min_lang_score}]
    stages.append({"stage": "image_text_filter", "min_words": args.min_words, "min_side": args.min_side,
                   "max_aspect": args.max_aspect, "min_similarity": args.min_similarity})
    dedup = [d for d in args.dedup.split(",") if d]
    unknown = sorted(set(dedup) - {"url", "image", "caption", "near"})
    if unknown:
        raise ConfigError(f"--dedup: unknown {', '.join(unknown)}; choose from url, image, caption, near")
    if "url" in dedup:
        stages.append({"stage": "exact_dedup", "id": "dedup_url", "column": "url", "normalise": False})
    if "image" in dedup and args.check_images:
        stages.append({"stage": "exact_dedup", "id": "dedup_image", "column": "image.bytes"})
    if "caption" in dedup:
        stages.append({"stage": "exact_dedup", "id": "dedup_caption"})
    if "near" in dedup:
        stages.append({"stage": "minhash_dedup", "id": "near_captions", "ngram": 2, "threshold": args.near_threshold})
    stages.append({"stage": "write", "keep_removed": True})
    return stages


def image_text_job(args: argparse.Namespace) -> int:
    args.job_name = "image_text"
    return _run(args, image_text_stages(args), "image_text_filter", "image")


def _image_text_args(p: argparse.ArgumentParser) -> None:
    _common_args(p, "caption files")
    p.add_argument("--check-images", action="store_true",
                   help="decode every image with Pillow (in-row bytes or local files; `media.image` of the source)")
    p.add_argument("--resize", type=int, default=None, help="with --check-images: re-encode at most N px on the long side")
    p.add_argument("--languages", default=None, help="keep captions in these languages (comma-separated ISO codes)")
    p.add_argument("--langid-backend", default="lingua", choices=("cld2", "lingua", "fasttext", "cascade"),
                   help="lingua is the most accurate on short text such as captions")
    p.add_argument("--min-lang-score", type=float, default=0.0,
                   help="0: the top language decides (lingua spreads its confidence over 75 languages on short captions)")
    p.add_argument("--min-words", type=int, default=2)
    p.add_argument("--min-side", type=int, default=200, help="pixels, when the rows carry width and height")
    p.add_argument("--max-aspect", type=float, default=3.0)
    p.add_argument("--min-similarity", type=float, default=0.28, help="CLIP similarity, when the rows carry it")
    p.add_argument("--dedup", default="url,image,caption,near",
                   help="exact duplicates of url, image (bytes, with --check-images), caption, and near-duplicate "
                        "captions (near); COCO-style data with several captions per image: drop caption")
    p.add_argument("--near-threshold", type=float, default=0.8)


JOBS = [
    Job("audio_features", "audio (files or dataset rows) -> Whisper-compatible log-mel spectrograms with their text",
        _audio_args, audio_job, own_dry_run=True),
    Job("image_text", "image–caption pairs: clean captions, filter on caption / size / scores, deduplicate",
        _image_text_args, image_text_job, own_dry_run=True),
]
