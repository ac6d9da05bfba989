"""Decoding with pydub and the bundled ffmpeg: every format to exact sample counts, resampling that keeps
the duration within one sample, silence trimming, and each bad input sorted into its reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multimodal.audio_fixtures import (
    ENCODERS,
    adpcm_wav,
    corrupt_header_wav,
    encode,
    header_only_wav,
    long_mp3,
    sine_wav,
)
from tokenmill.multimodal.audio import AudioOptions, AudioProblem, resample, sniff, waveform


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    wav = sine_wav(folder / "sine.wav")  # 2 s, 44.1 kHz stereo, 1 kHz
    return {"wav": wav, **{ext: encode(wav, ext) for ext in ENCODERS}}


@pytest.mark.parametrize("ext,kind", [("wav", "wav/pcm_s16le"), ("flac", "flac/flac"), ("mp3", "mp3/mp3"),
                                      ("ogg", "ogg/vorbis"), ("opus", "ogg/opus"), ("m4a", "mp4/aac"),
                                      ("webm", "webm/opus")])
def test_every_format_decodes_to_mono_16k_with_exact_length(clips, ext, kind):
    wave, got_kind = waveform(clips[ext].read_bytes(), AudioOptions())
    assert got_kind == kind
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 32_000  # 2 s at 16 kHz: encoder delay and padding are trimmed by the decoder
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(int(spectrum.argmax()) * 16_000 / len(wave) - 1000) <= 1  # still a 1 kHz tone
    assert 0.4 < float(np.abs(wave).max()) < 0.6


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000])
@pytest.mark.parametrize("n", [1, 999, 44_101])
def test_resampling_keeps_duration_within_one_sample(rate, n):
    out = resample(np.random.default_rng(n).standard_normal(n).astype(np.float32), rate, 16_000)
    assert len(out) == math.ceil(n * 16_000 / rate)
    assert abs(len(out) / 16_000 - n / rate) <= 1 / 16_000


def test_silence_is_trimmed_and_durations_filter(tmp_path):
    padded = sine_wav(tmp_path / "padded.wav", seconds=1.0, rate=16_000, channels=1, silence=0.5).read_bytes()
    assert len(waveform(padded, AudioOptions())[0]) == 32_000
    trimmed, _ = waveform(padded, AudioOptions(trim=True))
    assert abs(len(trimmed) - 16_000) <= 160  # pydub's detector works in 10 ms chunks
    with pytest.raises(AudioProblem, match="too_short"):
        waveform(padded, AudioOptions(trim=True, min_seconds=1.5))
    with pytest.raises(AudioProblem, match="too_long"):
        waveform(padded, AudioOptions(max_seconds=1.0))
    cut, _ = waveform(padded, AudioOptions(max_seconds=1.25, too_long="cut"))
    assert len(cut) == 20_000
    silent = sine_wav(tmp_path / "silent.wav", seconds=1.0, rate=16_000, channels=1, amplitude=0.0).read_bytes()
    with pytest.raises(AudioProblem, match="silent"):
        waveform(silent, AudioOptions(trim=True))


def test_bad_inputs_have_reasons(clips, tmp_path):
    cases = {
        "empty_file": b"",
        "not_audio": b"<!DOCTYPE html><html><body>Not found</body></html>",
        "no_audio": header_only_wav(tmp_path / "header.wav").read_bytes(),
        "corrupt": corrupt_header_wav(clips["wav"], tmp_path / "bad.wav").read_bytes(),
        "unsupported_codec": adpcm_wav(tmp_path / "adpcm.wav").read_bytes(),
        "too_long": long_mp3(tmp_path).read_bytes(),  # 3 hours, over the 30-minute default
    }
    cases["corrupt_stream"] = clips["mp3"].read_bytes()[:400] + bytes(range(256)) * 4
    for reason, data in cases.items():
        with pytest.raises(AudioProblem) as err:
            waveform(data, AudioOptions())
        assert err.value.reason == reason.replace("_stream", ""), (reason, str(err.value))
    with pytest.raises(AudioProblem, match="not_audio"):
        sniff(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
