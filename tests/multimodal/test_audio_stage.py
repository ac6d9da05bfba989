"""The `audio_features` stage end to end in Spark local mode: audio files of every format (with sidecar
transcripts) and Parquet rows in the Hugging Face `Audio` layout (LibriSpeech's published schema) turned
into Whisper-compatible spectrograms; every bad file a counted removal with its reason and path."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import WhisperFeatureExtractor

from conftest import ROOT, write_config
from multimodal.audio_fixtures import (
    ENCODERS,
    adpcm_wav,
    corrupt_header_wav,
    encode,
    header_only_wav,
    long_mp3,
    sine_wav,
)
from tokenmill.multimodal.audio import AudioOptions, waveform
from tokenmill.multimodal.features import mel_array, read_features
from tokenmill.pipeline import load_pipeline, run


def run_pipeline(spark, tmp_path, sources, stage, name="audio"):
    data = {"name": name, "output": str(tmp_path / name), "work_dir": str(tmp_path / "work"),
            "sources": sources, "stages": ["read", stage, "write"]}
    return run(spark, load_pipeline(str(write_config(tmp_path / f"{name}.yaml", data))))


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    good = folder / "good"
    good.mkdir()
    wav = sine_wav(good / "a_sine.wav", seconds=2.0)
    (good / "a_sine.txt").write_text("a one kilohertz tone\n")
    for ext in ENCODERS:
        encode(wav, ext, good / f"b_sine_{ext}.{ext}")
    sine_wav(good / "c_short.wav", seconds=0.5, rate=22_050, channels=1, freq=440)
    bad = folder / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    header_only_wav(bad / "header_only.wav")
    corrupt_header_wav(wav, bad / "corrupt_header.wav")
    adpcm_wav(bad / "adpcm.wav")
    (bad / "page.mp3").write_bytes(b"<!DOCTYPE html><html><body>403 Forbidden</body></html>")
    long_mp3(bad)
    return folder


def test_audio_files_to_spectrograms_with_counted_removals(spark, tmp_path, audio_folder):
    source = {"name": "clips", "format": "audio", "paths": [str(audio_folder)]}
    result = run_pipeline(spark, tmp_path, [source], {"stage": "audio_features", "max_seconds": 600})
    manifest = result.manifest
    stage = manifest["stages"][1]
    assert stage["rows_in"] == 14 and stage["rows_out"] == 8
    assert stage["removed"] == {"corrupt": 1, "empty_file": 1, "no_audio": 1, "not_audio": 1, "too_long": 1,
                                "unsupported_codec": 1}
    assert manifest["output"]["audio"] == {"clips": 8, "seconds": 14.5, "frames": 1450}

    out = tmp_path / "audio"
    kept = pq.read_table(out / "data").to_pylist()
    by_file = {r["meta"]["file"]: r for r in (dict(r, meta=dict(r["meta"])) for r in kept)}
    assert sorted(by_file) == ["good/a_sine.wav", "good/b_sine_flac.flac", "good/b_sine_m4a.m4a", "good/b_sine_mp3.mp3",
                               "good/b_sine_ogg.ogg", "good/b_sine_opus.opus", "good/b_sine_webm.webm",
                               "good/c_short.wav"]
    sine = by_file["good/a_sine.wav"]
    assert sine["text"] == "a one kilohertz tone" and by_file["good/b_sine_mp3.mp3"]["text"] is None
    assert (sine["n_mels"], sine["n_frames"], sine["duration"], sine["sample_rate"]) == (80, 200, 2.0, 16_000)
    assert by_file["good/c_short.wav"]["n_frames"] == 50 and by_file["good/c_short.wav"]["duration"] == 0.5
    assert by_file["good/b_sine_webm.webm"]["audio_codec"] == "webm/opus"
    assert "audio" not in kept[0]  # the features replace the audio column

    # The written spectrogram equals WhisperFeatureExtractor's on the same decoded waveform (no padding).
    wave, _ = waveform((audio_folder / "good" / "a_sine.wav").read_bytes(), AudioOptions())
    want = WhisperFeatureExtractor()(wave, sampling_rate=16_000, padding=False, return_tensors="np")["input_features"][0]
    got = mel_array(sine["mel"], 80, 200)
    assert want.shape == (80, 200) and np.abs(got - want).max() < 1e-4

    removed = {r["audio_path"].rsplit("/", 1)[1]: (r["removed_by"], r["audio_error"])
               for r in pq.read_table(out / "removed").to_pylist()}
    assert {k: v[0] for k, v in removed.items()} == {
        "adpcm.wav": "audio_features:unsupported_codec", "corrupt_header.wav": "audio_features:corrupt",
        "empty.wav": "audio_features:empty_file", "header_only.wav": "audio_features:no_audio",
        "page.mp3": "audio_features:not_audio", "three_hours.mp3": "audio_features:too_long"}
    assert "0x0011" in removed["adpcm.wav"][1] and "<!DOCTYPE" in removed["page.mp3"][1]


def test_hf_audio_rows_fixed_frames_equal_whisper(spark, tmp_path, audio_folder):
    """LibriSpeech's published Parquet schema (audio {bytes, path}, text, speaker_id, chapter_id, id), read
    through the preset's mapping; `frames: 3000` pads every clip to Whisper's 30 s window."""
    good = audio_folder / "good"
    files = ["a_sine.wav", "b_sine_flac.flac", "c_short.wav"]
    table = pa.table({
        "file": [f"/data/{f}" for f in files],
        "audio": [{"bytes": (good / f).read_bytes(), "path": f} for f in files] + [],
        "text": ["A TONE", "A TONE AGAIN", "A SHORT NOTE"],
        "speaker_id": pa.array([19, 19, 26], pa.int64()),
        "chapter_id": pa.array([198, 198, 495], pa.int64()),
        "id": ["19-198-0000", "19-198-0001", "26-495-0000"],
    })
    bad = {"file": "/data/x.flac", "audio": {"bytes": b"fLaC\x00\x00\x00\x22" + b"\x00" * 40, "path": "x.flac"},
           "text": "BROKEN", "speaker_id": 26, "chapter_id": 495, "id": "26-495-0001"}
    table = pa.concat_tables([table, pa.Table.from_pylist([bad], schema=table.schema)])
    folder = tmp_path / "librispeech" / "all" / "train.clean.100"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "0000.parquet")
    source = {"preset": "librispeech", "path": str(tmp_path / "librispeech")}
    result = run_pipeline(spark, tmp_path, [source], {"stage": "audio_features", "frames": 3000, "n_mels": 128},
                          name="libri")
    assert result.manifest["stages"][1]["removed"] == {"corrupt": 1}
    features = read_features(str(tmp_path / "libri" / "data"))
    assert features.num_rows == 3
    assert isinstance(features.column("mel").type, pa.FixedShapeTensorType)
    assert features.column("mel").type.shape == [128, 3000]
    mels = features.column("mel").combine_chunks().to_numpy_ndarray()
    order = features.column("text").to_pylist()
    assert sorted(order) == ["A SHORT NOTE", "A TONE", "A TONE AGAIN"]
    fe = WhisperFeatureExtractor(feature_size=128)
    for text, mel in zip(order, mels, strict=True):
        name = files[["A TONE", "A TONE AGAIN", "A SHORT NOTE"].index(text)]
        wave, _ = waveform((good / name).read_bytes(), AudioOptions())
        want = fe(wave, sampling_rate=16_000, return_tensors="np")["input_features"][0]  # padded to 30 s
        assert np.abs(mel - want).max() < 1e-4
    meta = {r["text"]: dict(r["meta"]) for r in features.select(["text", "meta"]).to_pylist()}
    assert meta["A TONE"]["speaker_id"] == "19" and meta["A TONE"]["field.file"] == "/data/a_sine.wav"
    assert json.loads((tmp_path / "libri" / "manifest.json").read_text())["output"]["audio"]["clips"] == 3


def test_audio_features_job_on_a_folder(spark, tmp_path, audio_folder, capsys):
    import argparse

    from tokenmill.multimodal.job import audio_job

    out = tmp_path / "job"
    args = argparse.Namespace(source=str(audio_folder / "good"), config=None, output=str(out), overrides=[],
                              force=False, spark_profile="test", spark=spark, n_mels=80, sample_rate=16_000,
                              frames=None, audio=None, root=None, trim_silence=True, min_seconds=1.0,
                              max_seconds=1800.0, too_long="remove")
    assert audio_job(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"][1]["removed"] == {"too_short": 1}  # the 0.5 s clip, under --min-seconds 1
    assert manifest["output"]["rows"] == 7
    printed = capsys.readouterr().out
    assert "audio     7 clips" in printed and "config   " in printed


def test_speech_presets_pipeline(spark, tmp_path, audio_folder):
    """conf/pipelines/audio_speech.yaml on local copies laid out as Common Voice, FSD50K and OpenSLR 54 publish
    them: per-source media mappings find each clip, the votes rule removes Common Voice's unvalidated clips,
    FSD50K's labels become the caption, every spectrogram is 80 x 3000."""
    import shutil

    import yaml

    mp3, wav = audio_folder / "good" / "b_sine_mp3.mp3", audio_folder / "good" / "a_sine.wav"
    cv = tmp_path / "cv"
    (cv / "transcript" / "en").mkdir(parents=True)
    (cv / "clips").mkdir()
    (cv / "transcript" / "en" / "train.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent\tlocale\tsegment\n"
        "0a1b\tcommon_voice_en_1.mp3\tThe quick brown fox.\t3\t0\t\t\t\ten\t\n"
        "0a1b\tcommon_voice_en_2.mp3\tNot yet validated.\t1\t0\t\t\t\ten\t\n"
        "0a1b\tcommon_voice_en_3.mp3\tDisputed \"clip\".\t2\t2\t\t\t\ten\t\n"
        "0a1b\tcommon_voice_en_4.mp3\tIts clip is missing.\t2\t0\t\t\t\ten\t\n")
    for i in (1, 2, 3):
        shutil.copy(mp3, cv / "clips" / f"common_voice_en_{i}.mp3")
    fsd = tmp_path / "fsd"
    (fsd / "FSD50K.ground_truth").mkdir(parents=True)
    (fsd / "FSD50K.dev_audio").mkdir()
    (fsd / "FSD50K.ground_truth" / "dev.csv").write_text(
        'fname,labels,mids,split\n64760,"Electric_guitar,Guitar,Music","/m/02sgy,/m/0342h,/m/04rlf",train\n')
    shutil.copy(wav, fsd / "FSD50K.dev_audio" / "64760.wav")
    slr = tmp_path / "slr"
    (slr / "asr_nepali" / "data" / "0a").mkdir(parents=True)
    (slr / "asr_nepali" / "utt_spk_text.tsv").write_text("0a1b2c3d4e\t4f5a1\tनमस्ते संसार\n")
    encode(wav, "flac", slr / "asr_nepali" / "data" / "0a" / "0a1b2c3d4e.flac")

    config = yaml.safe_load((ROOT / "conf" / "pipelines" / "audio_speech.yaml").read_text())
    for src, folder in zip(config["sources"], (cv, fsd, slr), strict=True):
        src["path"] = str(folder)
    config.update(output=str(tmp_path / "speech"), work_dir=str(tmp_path / "work"))
    result = run(spark, load_pipeline(str(write_config(tmp_path / "speech.yaml", config))))
    stages = {s["stage"]: s for s in result.manifest["stages"]}
    assert stages["votes"]["rows_in"] == 6 and stages["votes"]["removed"] == {"low_votes": 2}
    assert stages["audio_features"]["removed"] == {"missing_file": 1}
    assert result.manifest["output"]["rows_by_source"] == {"common_voice_11": 1, "fsd50k": 1, "openslr_nepali": 1}
    features = read_features(str(tmp_path / "speech" / "data"))
    assert features.column("mel").type.shape == [80, 3000]
    texts = dict(zip(features.column("source").to_pylist(), features.column("text").to_pylist(), strict=True))
    assert texts == {"common_voice_11": "The quick brown fox.", "fsd50k": "Electric guitar, Guitar, Music",
                     "openslr_nepali": "नमस्ते संसार"}
    removed = pq.read_table(tmp_path / "speech" / "removed").to_pylist()
    missing = [r for r in removed if r["removed_by"] == "audio_features:missing_file"]
    assert [r["audio_path"] for r in missing] == ["common_voice_en_4.mp3"]
