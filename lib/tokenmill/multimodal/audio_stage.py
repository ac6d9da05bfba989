"""The `audio_features` stage: each row's audio -> a Whisper-compatible log-mel spectrogram, in Arrow batches.

A row's audio is a column (the Hugging Face `Audio` layout `{bytes, path}`, raw bytes, or a path) or a path
in `meta` (`audio: meta.<key>`), relative paths under `root`. Bytes are decoded with pydub (multimodal/audio.py),
made mono at `sample_rate`, optionally trimmed of silence and cut or dropped by duration; the spectrograms of
a batch's clips are computed together (spectrogram.py). Unusable audio is a counted removal with its reason
and the detail (`audio_error`) kept on the removed row, never a crash.

Output columns: `mel` (float32, `n_mels` x `n_frames` flattened mel-major: reshape to (n_mels, n_frames)),
`n_mels`, `n_frames`, `duration` (seconds, after trimming), `sample_rate`, `audio_codec`; the transcript or
caption stays in `text`. With `frames: N` every spectrogram has N frames (padded with silence or cut, as
Whisper's 3000-frame 30 s window), so `mel` has a fixed shape (`read_features` gives a fixed-shape tensor).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..pipeline.stage import StageContext, StageParams, Written, map_batches, mark_removed, register
from ..schema import ID, REMOVED_BY, SOURCE, TEXT
from .audio import AudioOptions, AudioProblem, waveform
from .media import MediaProblem, media_input, media_names, row_bytes
from .spectrogram import MelSpec, log_mel

MEL, N_MELS, N_FRAMES, DURATION, SAMPLE_RATE = "mel", "n_mels", "n_frames", "duration", "sample_rate"
AUDIO_CODEC, AUDIO_ERROR, AUDIO_PROBLEM, AUDIO_PATH = "audio_codec", "audio_error", "_audio_problem", "audio_path"
ADDS = [MEL, N_MELS, N_FRAMES, DURATION, SAMPLE_RATE, AUDIO_CODEC, AUDIO_PATH]
_CLIPS_PER_CALL = 4  # spectrograms computed together (~5 MB of frames per 30 s clip)


class AudioFeaturesParams(StageParams):
    """Where each row's audio is, how it is prepared, and the spectrogram's shape."""

    # A column ({bytes, path} struct, binary or path string) or `meta.<key>` (a path); None: each source's
    # `media.audio` (source presets set it), else the `audio` column.
    audio: str | None = None
    path_format: str | None = None  # the path from the value: "{}.wav", "FSD50K.dev_audio/{}.wav" (see MediaMap)
    root: str | None = None  # relative paths are under this folder (default: the source's media root)
    storage_options: dict = Field(default_factory=dict)
    keep_audio: bool = False  # keep the audio column in the output (default: dropped, the features replace it)
    sample_rate: int = Field(default=16_000, gt=0)
    n_mels: int = Field(default=80, gt=0)  # Whisper: 80 (large-v3: 128)
    n_fft: int = Field(default=400, gt=0)  # the window (Hann) in samples
    hop: int = Field(default=160, gt=0)
    f_max: float | None = None  # default: half the sample rate
    frames: int | None = Field(default=None, gt=0)  # pad/cut every spectrogram to this many frames (3000: 30 s)
    min_seconds: float = Field(default=0.0, ge=0.0)
    max_seconds: float | None = Field(default=1800.0, gt=0.0)
    too_long: Literal["remove", "cut"] = "remove"
    trim_silence: bool = False
    silence_db: float = -50.0  # dBFS under which a 10 ms chunk is silence (pydub's default)
    max_bytes: int = Field(default=512 << 20, gt=0)
    # Decoding costs ~30 ms a clip, so rows are spread over at least this many tasks per core (by id hash)
    # when the input has fewer partitions: a few large Parquet files would otherwise keep cores idle.
    tasks_per_core: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _shape(self):
        if self.n_fft // 2 + 1 < self.n_mels:
            raise ValueError(f"n_fft {self.n_fft} gives {self.n_fft // 2 + 1} frequency bins, fewer than n_mels {self.n_mels}")
        return self

    def spec(self) -> MelSpec:
        return MelSpec(sample_rate=self.sample_rate, n_fft=self.n_fft, hop=self.hop, n_mels=self.n_mels,
                       f_max=self.f_max if self.f_max is not None else self.sample_rate / 2)

    def options(self) -> AudioOptions:
        return AudioOptions(sample_rate=self.sample_rate, min_seconds=self.min_seconds, max_seconds=self.max_seconds,
                            too_long=self.too_long, trim=self.trim_silence, silence_db=self.silence_db)


NEW_FIELDS = [
    T.StructField(MEL, T.BinaryType()),
    T.StructField(N_MELS, T.IntegerType()),
    T.StructField(N_FRAMES, T.IntegerType()),
    T.StructField(DURATION, T.DoubleType()),
    T.StructField(SAMPLE_RATE, T.IntegerType()),
    T.StructField(AUDIO_CODEC, T.StringType()),
    T.StructField(AUDIO_PATH, T.StringType()),
    T.StructField(AUDIO_PROBLEM, T.StringType()),
    T.StructField(AUDIO_ERROR, T.StringType()),
]


def label_text(text):
    """A comma-separated label list (FSD50K's `Electric_guitar,Guitar`) as a caption: `Electric guitar, Guitar`."""
    return F.regexp_replace(F.regexp_replace(F.trim(text), r"\s*,\s*", ", "), "_", " ")


def _features(params: AudioFeaturesParams):
    """The batch function: audio struct column -> the new columns."""
    spec, opts = params.spec(), params.options()

    def run(batch: pa.RecordBatch) -> dict[str, pa.Array]:
        audio = batch.column("_audio").to_pylist()
        roots = batch.column("_root").to_pylist()
        removed = batch.column(REMOVED_BY).to_pylist()
        n = len(audio)
        waves: list[np.ndarray | None] = [None] * n
        out = {k: [None] * n for k in (DURATION, AUDIO_CODEC, AUDIO_PATH, AUDIO_PROBLEM, AUDIO_ERROR)}
        for i, (item, gone, root) in enumerate(zip(audio, removed, roots, strict=True)):
            if gone is not None or item is None:
                continue
            path = item.get("path")
            out[AUDIO_PATH][i] = path
            try:
                data = row_bytes(item, root, params.max_bytes, params.storage_options, "audio")
                wave, codec = waveform(data, opts)
                if len(wave) < params.hop:
                    raise AudioProblem("too_short", f"{len(wave)} samples: less than one frame ({params.hop})")
            except (AudioProblem, MediaProblem) as problem:
                out[AUDIO_PROBLEM][i], out[AUDIO_ERROR][i] = problem.reason, problem.detail[:500] or None
                continue
            out[DURATION][i] = len(wave) / params.sample_rate
            out[AUDIO_CODEC][i] = codec
            waves[i] = wave
        mels = _spectrograms(waves, spec, params.frames)
        mel = pa.array([None if m is None else m.tobytes() for m in mels], pa.binary())
        frames = [None if m is None else int(m.shape[1]) for m in mels]
        return {
            MEL: mel,
            N_MELS: pa.array([None if m is None else spec.n_mels for m in mels], pa.int32()),
            N_FRAMES: pa.array(frames, pa.int32()),
            DURATION: pa.array(out[DURATION], pa.float64()),
            SAMPLE_RATE: pa.array([None if m is None else spec.sample_rate for m in mels], pa.int32()),
            AUDIO_CODEC: pa.array(out[AUDIO_CODEC], pa.string()),
            AUDIO_PATH: pa.array(out[AUDIO_PATH], pa.string()),
            AUDIO_PROBLEM: pa.array(out[AUDIO_PROBLEM], pa.string()),
            AUDIO_ERROR: pa.array(out[AUDIO_ERROR], pa.string()),
        }

    return run


def _spectrograms(waves: list[np.ndarray | None], spec: MelSpec, frames: int | None = None) -> list[np.ndarray | None]:
    """Log-mel of each waveform, a few clips per call (measured fastest at 4: larger stacks leave the cache).
    With ``frames`` every clip is padded with silence or cut to that many frames; clips are taken in order of
    length so each call computes only up to its longest clip's audio (log_mel's ``audio_samples``)."""
    out: list[np.ndarray | None] = [None] * len(waves)
    if frames:
        want = frames * spec.hop
        rows = sorted((i for i, w in enumerate(waves) if w is not None), key=lambda i: len(waves[i]))
        for k in range(0, len(rows), _CLIPS_PER_CALL):
            part = rows[k:k + _CLIPS_PER_CALL]
            stack = np.zeros((len(part), want), np.float32)
            for j, i in enumerate(part):
                w = waves[i][:want]
                stack[j, :len(w)] = w
            mels = log_mel(stack, spec, audio_samples=min(want, max(len(waves[i]) for i in part)))
            for j, i in enumerate(part):
                out[i] = mels[j]
        return out
    by_length: dict[int, list[int]] = {}
    for i, w in enumerate(waves):
        if w is not None:
            by_length.setdefault(len(w), []).append(i)
    for length, rows in by_length.items():
        for k in range(0, len(rows), _CLIPS_PER_CALL):
            part = rows[k:k + _CLIPS_PER_CALL]
            if length < spec.n_fft // 2 + 1:  # reflect padding needs more samples than half a window
                for i in part:
                    out[i] = log_mel(np.pad(waves[i], (0, spec.n_fft // 2 + 1 - length)), spec)[0][:, : length // spec.hop]
                continue
            mels = log_mel(np.stack([waves[i] for i in part]), spec)
            for j, i in enumerate(part):
                out[i] = mels[j]
    return out


def summarize_audio(out: Written) -> dict:
    """The manifest's `output.audio`: clips, seconds and frames written."""
    if DURATION not in out.kept.columns:
        return {}
    row = out.kept.agg(F.count(F.col(DURATION)).alias("clips"), F.sum(DURATION).alias("seconds"),
                       F.sum(N_FRAMES).alias("frames")).first()
    return {"audio": {"clips": int(row["clips"]), "seconds": round(float(row["seconds"] or 0.0), 3),
                      "frames": int(row["frames"] or 0)}}


def describe_audio(manifest: dict, label: str) -> list[str]:
    audio = manifest.get("output", {}).get("audio")
    if not audio:
        return []
    return [f"audio     {audio['clips']:,} clips, {audio['seconds'] / 3600:,.2f} h, {audio['frames']:,} frames"]


@register("audio_features", "filter", AudioFeaturesParams, version="1", adds=ADDS + [AUDIO_ERROR],
          audit=[AUDIO_PATH, AUDIO_ERROR], summarize=summarize_audio, describe=describe_audio)
def audio_features(ctx: StageContext, df: DataFrame, params: AudioFeaturesParams) -> DataFrame:
    """Decode each row's audio and add its log-mel spectrogram; unusable audio is removed with its reason."""
    audio, root = media_input(df, ctx.sources, "audio", params.audio, params.path_format, params.root, ctx.label)
    with_audio = df.withColumn("_audio", audio).withColumn("_root", root)
    want = params.tasks_per_core * ctx.spark.sparkContext.defaultParallelism
    if want and df.rdd.getNumPartitions() < want:
        with_audio = with_audio.repartition(want, F.col(ID))
    if not params.keep_audio:  # the bytes go to Python once, inside `_audio`, and do not come back
        with_audio = with_audio.drop(*media_names(df, ctx.sources, "audio", params.audio))
    out = map_batches(with_audio, _features(params), NEW_FIELDS, drop=["_audio", "_root"])
    labelled = [s.name for s in ctx.sources if getattr(s, "media", None) and s.media.text == "labels"]
    if labelled:
        out = out.withColumn(TEXT, F.when(F.col(SOURCE).isin(labelled), label_text(F.col(TEXT))).otherwise(F.col(TEXT)))
    out = mark_removed(out, None, ctx.label, F.col(AUDIO_PROBLEM)).drop(AUDIO_PROBLEM)
    spec = params.spec()
    ctx.report_all({"sample_rate": spec.sample_rate, "n_mels": spec.n_mels, "n_fft": spec.n_fft, "hop": spec.hop,
                    "frames": params.frames, "trim_silence": params.trim_silence,
                    "min_seconds": params.min_seconds, "max_seconds": params.max_seconds})
    return out
