"""Audio files made by the tests: sines written with the standard library's `wave`, encoded to each format
with the bundled ffmpeg, and damaged files for each bad-input reason."""

from __future__ import annotations

import struct
import subprocess
import wave
from pathlib import Path

import numpy as np

from tokenmill.multimodal.audio import ffmpeg

# extension -> ffmpeg encoder arguments
ENCODERS = {"flac": ["-c:a", "flac"], "mp3": ["-c:a", "libmp3lame"], "ogg": ["-c:a", "libvorbis"],
            "opus": ["-c:a", "libopus"], "m4a": ["-c:a", "aac"], "webm": ["-c:a", "libopus"]}


def sine_wav(path: Path, seconds: float = 2.0, rate: int = 44_100, channels: int = 2, freq: float = 1000.0,
             amplitude: float = 0.5, silence: float = 0.0) -> Path:
    """A 16-bit sine, optionally with ``silence`` seconds of digital silence before and after it."""
    n = int(round(seconds * rate))
    x = amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)
    pad = np.zeros(int(round(silence * rate)))
    x = np.concatenate([pad, x, pad])
    ints = np.repeat((x * 32767).astype("<i2")[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())
    return path


def encode(wav: Path, ext: str, out: Path | None = None, *extra: str) -> Path:
    """``wav`` encoded with the bundled ffmpeg into ``ext`` (a key of ENCODERS)."""
    out = out or wav.with_suffix("." + ext)
    subprocess.run([ffmpeg(), "-y", "-loglevel", "error", "-i", str(wav), *ENCODERS[ext], *extra, str(out)], check=True)
    return out


def header_only_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
    return path


def adpcm_wav(path: Path) -> Path:
    """A WAV whose fmt chunk says IMA ADPCM (tag 0x11), a codec the stage does not decode."""
    fmt = struct.pack("<HHIIHH", 0x11, 1, 16_000, 8_000, 256, 4) + struct.pack("<HH", 2, 505)
    data = b"\x00" * 512
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def corrupt_header_wav(good: Path, path: Path) -> Path:
    """``good`` with its fmt chunk's size and format fields overwritten with garbage."""
    data = bytearray(good.read_bytes())
    data[16:36] = b"\xff" * 20
    path.write_bytes(bytes(data))
    return path


def long_mp3(folder: Path, hours: float = 3.0) -> Path:
    """An MP3 ``hours`` long: one minute of 8 kHz mono encoded once, its frames repeated."""
    minute = folder / "minute.mp3"
    subprocess.run([ffmpeg(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=8000",
                    "-t", "60", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "8k", "-write_xing", "0", "-id3v2_version", "0", str(minute)],
                   check=True)
    out = folder / "three_hours.mp3"
    out.write_bytes(minute.read_bytes() * int(hours * 60))
    minute.unlink()
    return out
