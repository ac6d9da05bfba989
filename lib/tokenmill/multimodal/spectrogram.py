"""Log-mel spectrograms for a whole batch of waveforms at once (numpy), Whisper-compatible by default.

Whisper's front end (Radford et al., 2022): 16 kHz mono, a 400-sample periodic Hann window, hop 160,
centred frames with reflect padding, the power spectrum onto 80 (or 128) Slaney mel filters from 0 to
8 kHz, log10 with a floor of 1e-10, the last frame dropped, values clamped to 8 below the clip's maximum,
then (x + 4) / 4. The filter bank is `transformers`' own (`audio_utils.mel_filter_bank`), so the output
equals `WhisperFeatureExtractor`'s (a test holds them within 1e-4); the frames of every clip of a batch
go through one FFT call and one matrix product instead of a Python loop per clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = 16_000
    n_fft: int = 400
    hop: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8_000.0
    dynamic_range: float = 8.0  # log10 units below the clip's maximum that are kept (Whisper: 8)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (Auditory Toolbox): linear to 1 kHz (3 mels per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(hz < 1000.0, 3.0 * hz / 200.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(mel < 15.0, 200.0 * mel / 3.0, 1000.0 * np.exp(log_step * (mel - 15.0)))


@lru_cache(maxsize=8)
def _filters(spec: MelSpec) -> np.ndarray:
    """(frequency bins, n_mels) triangular filters, centres evenly spaced in Slaney mels from f_min to f_max,
    each scaled to unit area (Slaney norm): the bank Whisper's feature extractor uses. Built here in numpy
    (tests hold it equal to `transformers.audio_utils.mel_filter_bank`) so audio workers never import
    `transformers`."""
    fft_freqs = np.linspace(0, spec.sample_rate // 2, spec.n_fft // 2 + 1)
    mels = np.linspace(_hz_to_mel(spec.f_min), _hz_to_mel(spec.f_max), spec.n_mels + 2)
    edges = _mel_to_hz(mels)
    width = np.diff(edges)
    slopes = edges[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / width[:-1]
    up = slopes[:, 2:] / width[1:]
    bank = np.maximum(0.0, np.minimum(down, up))
    bank *= 2.0 / (edges[2:] - edges[:-2])[None, :]
    return bank.astype(np.float32)


@lru_cache(maxsize=8)
def _paired_filters(spec: MelSpec) -> np.ndarray:
    """The filter bank with each frequency row twice, for interleaved (real^2, imag^2) inputs."""
    return np.ascontiguousarray(np.repeat(_filters(spec), 2, axis=0))


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann


def n_frames(n_samples: int, spec: MelSpec = MelSpec()) -> int:
    """Frames a clip of ``n_samples`` gives (centred frames, the last one dropped as Whisper does)."""
    return n_samples // spec.hop


def log_mel(waves: np.ndarray, spec: MelSpec = MelSpec(), audio_samples: int | None = None) -> np.ndarray:
    """(clips, samples) float waveforms of equal length -> (clips, n_mels, frames) float32 log-mel features.
    In float32 throughout (measured 15x faster than float64 on 30 s clips, within 1e-4 of Whisper's).

    ``audio_samples``: every clip is silence (exact zeros) after this many samples, as when short clips are
    padded to Whisper's 30 s window. Frames wholly inside that silence have no energy, so their log-mel is
    the floor (log10 1e-10) without computing it: the cost follows the audio, not the window.
    """
    import scipy.fft

    waves = np.asarray(waves, dtype=np.float32)
    if waves.ndim == 1:
        waves = waves[None, :]
    clips, n = waves.shape
    pad = spec.n_fft // 2
    total = n // spec.hop + 1  # centred frames, before Whisper drops the last one
    need = total
    if audio_samples is not None and audio_samples + 2 * pad < n:
        # frame f sees samples [f*hop - pad, f*hop + pad): zero from f*hop >= audio_samples + pad on (the reflected
        # end of the window stays in the silence too, since audio_samples + 2 pad < n)
        need = min(total, -(-(audio_samples + pad) // spec.hop) + 1)
    if need < total:
        stop = min(n, (need - 1) * spec.hop + pad)  # the samples the computed frames read
        padded = np.pad(waves[:, :stop], ((0, 0), (pad, pad)), mode="constant")
        padded[:, :pad] = waves[:, pad:0:-1]  # the reflected start, as in the full computation
    else:
        padded = np.pad(waves, ((0, 0), (pad, pad)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, spec.n_fft, axis=-1)[:, ::spec.hop, :][:, :need]
    bins = scipy.fft.rfft(frames * _window(spec.n_fft), axis=-1, overwrite_x=True)  # (clips, frames, bins) complex64
    # |X|^2 @ filters as (re^2, im^2 interleaved) @ (each filter row twice): squares in place, no temporaries
    parts = bins.view(np.float32)
    np.multiply(parts, parts, out=parts)
    mel = parts @ _paired_filters(spec)  # (clips, frames, n_mels)
    log = np.full((clips, total - 1, spec.n_mels), -10.0, dtype=np.float32)  # log10(1e-10): silence
    computed = min(need, total - 1)
    log[:, :computed] = np.log10(np.maximum(mel[:, :computed], 1e-10))
    floor = log.max(axis=(1, 2), keepdims=True) - spec.dynamic_range
    log = (np.maximum(log, floor) + 4.0) / 4.0
    return np.ascontiguousarray(log.transpose(0, 2, 1), dtype=np.float32)
