"""The batched log-mel spectrogram equals transformers' WhisperFeatureExtractor on the same waveforms
(within 1e-4), for 80 and 128 mel bins; a 1 kHz sine peaks in the mel bin whose filter is strongest at
1 kHz; frame counts are exact."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import WhisperFeatureExtractor

from tokenmill.multimodal.spectrogram import MelSpec, _filters, log_mel, n_frames

SR = 16_000


def _clips() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    speechy = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)
    noise = 0.1 * rng.standard_normal(t.size)
    return np.stack([speechy, noise]).astype(np.float32)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_equals_whisper_feature_extractor(n_mels):
    clips = _clips()
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    want = fe(list(clips), sampling_rate=SR, return_tensors="np")["input_features"]  # padded to 30 s
    padded = np.zeros((len(clips), fe.n_samples), np.float32)
    padded[:, :clips.shape[1]] = clips
    got = log_mel(padded, MelSpec(n_mels=n_mels))
    assert got.shape == want.shape == (2, n_mels, 3000)
    assert np.abs(got - want).max() < 1e-4


def test_sine_peaks_in_the_expected_mel_bin_and_frames_are_exact():
    t = np.arange(SR) / SR
    got = log_mel(np.sin(2 * np.pi * 1000 * t)[None, :])
    assert got.shape == (1, 80, n_frames(SR)) == (1, 80, 100)
    spec = MelSpec()
    bin_1k = round(1000 / (spec.sample_rate / spec.n_fft))  # 1 kHz in FFT bins of 40 Hz
    assert int(got[0].mean(axis=1).argmax()) == int(_filters(spec)[bin_1k].argmax())


@pytest.mark.parametrize("spec", [MelSpec(), MelSpec(n_mels=128), MelSpec(f_min=20.0, f_max=7_600.0),
                                  MelSpec(sample_rate=22_050, n_fft=1024, hop=256, n_mels=64, f_max=11_025.0)])
def test_filter_bank_is_transformers_own_without_importing_it(spec):
    """Our numpy Slaney filter bank is bit for bit `transformers.audio_utils.mel_filter_bank` (so an audio
    worker does not import transformers for it)."""
    from transformers.audio_utils import mel_filter_bank

    want = mel_filter_bank(num_frequency_bins=spec.n_fft // 2 + 1, num_mel_filters=spec.n_mels,
                           min_frequency=spec.f_min, max_frequency=spec.f_max, sampling_rate=spec.sample_rate,
                           norm="slaney", mel_scale="slaney").astype(np.float32)
    assert np.array_equal(_filters(spec), want)
