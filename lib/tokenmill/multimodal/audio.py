"""Audio bytes -> a mono float32 waveform at the wanted rate, or the reason the bytes are not usable audio.

Decoding is pydub's: WAV through its own parser, compressed formats (FLAC, MP3, Ogg Vorbis/Opus, M4A/AAC,
WebM) through the ffmpeg binary that the `imageio-ffmpeg` package bundles, so no system install is needed.
The container and codec are recognised from the bytes first (magic numbers and codec tags), which names
the decoder for ffmpeg (pydub would otherwise call `ffprobe`, which no package bundles) and sorts bad input
into reasons: an empty file, bytes that are no audio, a codec we cannot decode, a damaged file, no samples.
Silence is trimmed with pydub (`detect_leading_silence`, both ends); resampling is scipy's polyphase filter
(`resample_poly`), whose output has exactly ceil(n * new / old) samples, so the duration is kept within one
sample.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Reasons an input is not turned into features (`audio_features:<reason>` in `removed_by`).
REASONS = {
    "missing_file": "the audio file does not exist or cannot be opened",
    "empty_file": "zero bytes",
    "not_audio": "the bytes are no known audio container (HTML, an image, text, ...)",
    "unsupported_codec": "a known container with a codec that cannot be decoded here",
    "corrupt": "the decoder failed: a damaged header or stream",
    "no_audio": "decoded to zero samples (a header-only or zero-length file)",
    "too_large": "the file is bigger than `max_bytes`",
    "too_long": "longer than `max_seconds`",
    "too_short": "shorter than `min_seconds` (after trimming silence)",
    "silent": "nothing louder than `silence_db` (trimming left no audio)",
}

_WAV_CODECS = {(1, 8): "pcm_u8", (1, 16): "pcm_s16le", (1, 24): "pcm_s24le", (1, 32): "pcm_s32le",
               (3, 32): "pcm_f32le", (3, 64): "pcm_f64le", (6, 8): "pcm_alaw", (7, 8): "pcm_mulaw"}
_MKV_CODECS = {b"A_OPUS": "opus", b"A_VORBIS": "vorbis", b"A_AAC": "aac", b"A_FLAC": "flac", b"A_MPEG/L3": "mp3"}
_MP4_CODECS = {b"mp4a": "aac", b"alac": "alac", b"Opus": "opus", b"fLaC": "flac", b".mp3": "mp3"}
_OGG_CODECS = {b"OpusHead": "opus", b"\x01vorbis": "vorbis", b"\x7fFLAC": "flac"}


class AudioProblem(Exception):
    """The input is not usable audio: ``reason`` is one of REASONS, ``detail`` says what was seen."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Kind:
    """What the bytes are: the container and the decoder ffmpeg should use (None: pydub's own WAV parser
    may read it; the codec is still given for ffmpeg's fallback)."""

    container: str  # wav | flac | mp3 | aac | ogg | mp4 | webm
    codec: str


def _wav_kind(data: bytes) -> Kind:
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk == b"fmt ":
            if size < 16 or pos + 24 > len(data):
                raise AudioProblem("corrupt", "WAV fmt chunk is truncated")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, pos + 8)
            if not channels or not rate or tag in (0, 0xFFFF) or not 0 < bits <= 64:
                raise AudioProblem("corrupt", f"WAV fmt chunk: format tag 0x{tag:04X}, {channels} channels, "
                                              f"{rate} Hz, {bits}-bit samples")
            if tag == 0xFFFE and size >= 40 and pos + 8 + 26 <= len(data):
                tag = struct.unpack_from("<H", data, pos + 8 + 24)[0]  # WAVE_FORMAT_EXTENSIBLE: the sub-format
            codec = _WAV_CODECS.get((tag, bits))
            if codec is None:
                raise AudioProblem("unsupported_codec", f"WAV format tag 0x{tag:04X} with {bits}-bit samples")
            return Kind("wav", codec)
        pos += 8 + size + (size & 1)
    raise AudioProblem("corrupt", "RIFF/WAVE without a fmt chunk")


def _id3_end(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def sniff(data: bytes) -> Kind:
    """The container and codec of ``data``, from its magic numbers and codec tags; AudioProblem if none."""
    if not data:
        raise AudioProblem("empty_file")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return _wav_kind(data)
    if data[:4] in (b"RIFF", b"RIFX") or data[:4] == b"RF64":
        raise AudioProblem("unsupported_codec", f"RIFF form {data[8:12]!r}")
    start = _id3_end(data)
    head = data[start:start + 4]
    if head == b"fLaC":
        return Kind("flac", "flac")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return Kind("aac", "aac") if head[1] & 0x06 == 0 else Kind("mp3", "mp3")  # ADTS has layer bits 00
    if data[:4] == b"OggS":
        for tag, codec in _OGG_CODECS.items():
            if tag in data[:4096]:
                return Kind("ogg", codec)
        raise AudioProblem("unsupported_codec", "an Ogg stream that is not Opus, Vorbis or FLAC")
    if data[4:8] == b"ftyp":
        for tag, codec in _MP4_CODECS.items():
            if tag in data:
                return Kind("mp4", codec)
        raise AudioProblem("unsupported_codec", "an MP4/M4A file without an AAC, ALAC, Opus, FLAC or MP3 track")
    if data[:4] == b"\x1a\x45\xdf\xa3":
        for tag, codec in _MKV_CODECS.items():
            if tag in data[:1 << 20]:
                return Kind("webm", codec)
        raise AudioProblem("unsupported_codec", "a WebM/Matroska file without an Opus, Vorbis, AAC, FLAC or MP3 track")
    shown = data[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
    raise AudioProblem("not_audio", f"starts with {shown!r}")


@lru_cache(maxsize=1)
def ffmpeg() -> str:
    """The ffmpeg binary pydub runs: $TOKENMILL_FFMPEG, else the one bundled by imageio-ffmpeg."""
    found = os.environ.get("TOKENMILL_FFMPEG")
    if not found:
        import imageio_ffmpeg

        found = imageio_ffmpeg.get_ffmpeg_exe()
    import warnings

    with warnings.catch_warnings():  # pydub warns at import when no ffmpeg is on PATH: it is given here
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment
    AudioSegment.converter = found
    return found


def _decoder_failure(text: str) -> AudioProblem:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(("ffmpeg version", "  "))]
    detail = "; ".join(lines[-2:])[-300:]
    if re.search(r"Unknown decoder|Decoder \S+ not found|not supported|unsupported codec", text, re.I):
        return AudioProblem("unsupported_codec", detail)
    return AudioProblem("corrupt", detail)


def decode(data: bytes, max_seconds: float | None = None):
    """``data`` as a pydub AudioSegment (at most ``max_seconds`` plus a little is decoded, so a 3-hour file
    over the limit costs little); AudioProblem when it is not usable audio."""
    kind = sniff(data)
    ffmpeg()  # before pydub's import: it sets the converter
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError

    limit = None if max_seconds is None else max_seconds + 1.0
    try:
        if kind.container == "wav":
            seg = AudioSegment.from_file(io.BytesIO(data), format="wav", codec=kind.codec, duration=limit)
        else:
            seg = AudioSegment.from_file(io.BytesIO(data), codec=kind.codec, duration=limit)
    except CouldntDecodeError as err:
        raise _decoder_failure(str(err)) from None
    except (struct.error, ValueError, IndexError, EOFError) as err:
        raise AudioProblem("corrupt", f"{type(err).__name__}: {err}") from None
    if seg.frame_count() == 0:
        raise AudioProblem("no_audio", f"{kind.container}/{kind.codec}: zero samples")
    return seg


def trim_silence(seg, silence_db: float, chunk_ms: int = 10):
    """``seg`` without leading and trailing chunks quieter than ``silence_db`` dBFS (pydub's detector)."""
    from pydub.silence import detect_leading_silence

    start = detect_leading_silence(seg, silence_threshold=silence_db, chunk_size=chunk_ms)
    if start >= len(seg):
        return seg[0:0]
    end = len(seg) - detect_leading_silence(seg.reverse(), silence_threshold=silence_db, chunk_size=chunk_ms)
    return seg[start:end]


def samples(seg) -> np.ndarray:
    """The segment's samples as mono float32 in [-1, 1] (channels averaged)."""
    ints = np.frombuffer(seg.raw_data, dtype={1: np.int8, 2: np.int16, 4: np.int32}[seg.sample_width])
    wave = ints.astype(np.float32) / float(1 << (8 * seg.sample_width - 1))
    if seg.channels > 1:
        wave = wave[: len(wave) // seg.channels * seg.channels].reshape(-1, seg.channels).mean(axis=1)
    return wave


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` at ``target`` Hz: exactly ceil(len * target / rate) samples (scipy's polyphase filter)."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(wave, target // g, rate // g).astype(np.float32, copy=False)


@dataclass(frozen=True)
class AudioOptions:
    sample_rate: int = 16_000
    min_seconds: float = 0.0
    max_seconds: float | None = 1800.0
    too_long: str = "remove"  # remove | cut (keep the first max_seconds)
    trim: bool = False
    silence_db: float = -50.0


def waveform(data: bytes, opts: AudioOptions) -> tuple[np.ndarray, str]:
    """Audio bytes -> (mono float32 samples at ``opts.sample_rate``, "container/codec"); AudioProblem for
    unusable input or a duration outside the limits."""
    kind = sniff(data)
    seg = decode(data, opts.max_seconds)
    if opts.max_seconds is not None and seg.duration_seconds > opts.max_seconds:
        if opts.too_long == "remove":
            raise AudioProblem("too_long", f"more than {opts.max_seconds:g} s")
        seg = seg[: int(opts.max_seconds * 1000)]
    if opts.trim:
        seg = trim_silence(seg, opts.silence_db)
        if len(seg) == 0:
            raise AudioProblem("silent", f"no chunk above {opts.silence_db:g} dBFS")
    wave = resample(samples(seg), seg.frame_rate, opts.sample_rate)
    if opts.max_seconds is not None and opts.too_long == "cut":
        wave = wave[: int(round(opts.max_seconds * opts.sample_rate))]
    if len(wave) / opts.sample_rate < opts.min_seconds:
        raise AudioProblem("too_short", f"{len(wave) / opts.sample_rate:.3f} s < {opts.min_seconds:g} s")
    return wave, f"{kind.container}/{kind.codec}"
