"""One session-scoped local SparkSession and the generated sample crawl, shared by every test."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


@pytest.fixture(scope="session")
def spark():
    from tokenmill.spark import build_session

    session = build_session("test", app_name="tokenmill-tests", search=[ROOT / "conf" / "spark"])
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    from tokenmill.sample.generate import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(str(out))
    return out


def sample_config(sample: Path, output: Path, conf: str = "sample.yaml", **extra) -> dict:
    """A shipped pipeline config (conf/pipelines/sample.yaml by default), its source presets resolved,
    pointed at a test's folders."""
    from tokenmill.pipeline.plan import resolve_source_presets

    path = ROOT / "conf" / "pipelines" / conf
    data = resolve_source_presets(yaml.safe_load(path.read_text()), str(path))
    for src in data["sources"]:
        src["paths"] = src["paths"].replace("data/sample", str(sample))
    def point(node):  # every "data/sample/..." in the stages -> the test's sample folder
        if isinstance(node, dict):
            return {k: point(v) for k, v in node.items()}
        if isinstance(node, list):
            return [point(v) for v in node]
        return node.replace("data/sample", str(sample)) if isinstance(node, str) else node

    data["stages"] = point(data["stages"])
    data["output"] = str(output)
    data.update(extra)
    return data


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def sample_run(spark, sample_dir, tmp_path_factory):
    """The sample pipeline run once in local mode: (output folder, run result)."""
    from tokenmill.pipeline import load_pipeline, run

    out = tmp_path_factory.mktemp("run") / "sample"
    cfg = write_config(out.parent / "sample.yaml", sample_config(sample_dir, out))
    result = run(spark, load_pipeline(str(cfg)))
    return out, result


@pytest.fixture(scope="session")
def fineweb_run(spark, sample_dir, tmp_path_factory):
    """conf/pipelines/quality_fineweb.yaml on the sample crawl: (config path, output folder, run result)."""
    from tokenmill.pipeline import load_pipeline, run

    out = tmp_path_factory.mktemp("quality") / "fineweb"
    data = sample_config(sample_dir, out, conf="quality_fineweb.yaml")
    data = json.loads(json.dumps(data).replace("conf/presets/", str(ROOT / "conf/presets") + "/"))
    cfg = write_config(out.parent / "fineweb.yaml", data)
    return cfg, out, run(spark, load_pipeline(str(cfg)))


@pytest.fixture(scope="session")
def dedup_run(spark, sample_dir, tmp_path_factory):
    """conf/pipelines/dedup_sample.yaml on the sample crawl (its index in the test's folder, report.html
    written): (output, result)."""
    from tokenmill.pipeline import load_pipeline, run

    base = tmp_path_factory.mktemp("dedup")
    data = sample_config(sample_dir, base / "out", conf="dedup_sample.yaml")
    data["stages"][2]["index"] = str(base / "index")
    data["work_dir"] = str(base / "work")
    before = os.environ.get("TOKENMILL_REPORT")
    os.environ["TOKENMILL_REPORT"] = "1"  # this run writes its report.html (tests/report read it)
    try:
        return base / "out", run(spark, load_pipeline(str(write_config(base / "dedup.yaml", data))))
    finally:
        os.environ["TOKENMILL_REPORT"] = before if before is not None else "0"


os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
# report.html costs a second or two of plotting per run; the tests of the report turn it back on
os.environ.setdefault("TOKENMILL_REPORT", "0")


def own_tokenizer(path) -> str:
    """A WordPiece-free byte-level BPE with a BOS/EOS template, trained in a second and saved for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 50 + ["über den Fluss"] * 20,
                            trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                       special_tokens=[("<s>", 0), ("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>").save_pretrained(str(path))
    return str(path)
