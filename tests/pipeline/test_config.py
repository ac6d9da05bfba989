"""Typed configs: bad keys, types and missing values name the file and key path; --set overrides."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT, sample_config, write_config
from tokenmill.config import apply_override
from tokenmill.errors import ConfigError
from tokenmill.pipeline import load_pipeline


def test_sample_config_loads(sample_dir, tmp_path):
    plan = load_pipeline(str(write_config(tmp_path / "c.yaml", sample_config(sample_dir, tmp_path / "o"))))
    assert [s.label for s in plan.stages] == ["read", "langid", "decontaminate", "tokens", "write"]
    assert [s.format for s in plan.config.sources] == ["warc", "wet", "jsonl", "parquet"]
    assert plan.config.sources[2].fields.url_field == "metadata.url"  # the dolma layout
    assert plan.stages[4].params.partition_by == ["source"]


def test_unknown_key_names_file_and_path(sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "o")
    data["sources"][0]["extracter"] = "resiliparse"
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_pipeline(str(path))
    assert f"{path}: sources[0].warc.extracter: unknown key" in str(err.value)


def test_wrong_type_in_stage_names_key_path(sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "o")
    data["stages"][4]["keep_removed"] = "sometimes"
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError, match=r"bad\.yaml: stages\[4\]\.keep_removed: Input should be a valid boolean"):
        load_pipeline(str(path))


def test_missing_required_value(sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "o")
    del data["output"]
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError, match=r"bad\.yaml: output: Field required"):
        load_pipeline(str(path))


def test_unknown_stage_lists_known(sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "o")
    data["stages"].insert(1, "dedupe")
    path = write_config(tmp_path / "bad.yaml", data)
    from tokenmill.catalog import load_stages
    from tokenmill.pipeline.stage import REGISTRY

    load_stages()
    known = ", ".join(sorted(REGISTRY))
    with pytest.raises(ConfigError, match=re.escape(f"stages[1].stage: unknown stage 'dedupe'; known stages: {known}")):
        load_pipeline(str(path))


def test_set_errors_blame_the_set_and_names_get_did_you_mean(sample_dir, tmp_path):
    """A bad value given with --set is blamed on the --set, not the file; mistyped keys and names get the
    closest known one."""
    data = sample_config(sample_dir, tmp_path / "o")
    path = write_config(tmp_path / "c.yaml", data)
    cases = [
        (["stages[4].keep_removed=maybe"], "--set stages[4].keep_removed=maybe: stages[4].keep_removed: Input "
                                           "should be a valid boolean"),
        (["sources[0].extracter=resiliparse"], "--set sources[0].extracter=resiliparse: sources[0].warc.extracter: "
                                               "unknown key (did you mean 'extractor'?)"),
        (["stages[1].stage=langidd"], "--set stages[1].stage=langidd: stages[1].stage: unknown stage 'langidd' "
                                      "(did you mean 'langid'?)"),
        (["sources[0].preset=sample_wrc"], "--set sources[0].preset=sample_wrc: sources[0].preset: unknown source "
                                           "preset 'sample_wrc' (did you mean 'sample_warc'?)"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError) as err:
            load_pipeline(str(path), overrides)
        assert str(err.value).startswith(message), str(err.value)
    data["stages"][1]["min_letterz"] = 3  # the same mistakes in the file name the file
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: stages[1].min_letterz: unknown key "
                                                    "(did you mean 'min_letters'?)")):
        load_pipeline(str(path))


def test_unknown_layout_and_format(sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "o")
    data["sources"][2]["fields"]["layout"] = "c4-ish"
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError, match=r"sources\[2\]\.jsonl\.fields.*unknown layout 'c4-ish'"):
        load_pipeline(str(path))


def test_set_overrides(sample_dir, tmp_path):
    path = write_config(tmp_path / "c.yaml", sample_config(sample_dir, tmp_path / "o"))
    plan = load_pipeline(str(path), ["output=/tmp/elsewhere", "stages[4].keep_removed=false",
                                     "sources.0.on_error=raise"])
    assert plan.config.output == "/tmp/elsewhere"
    assert plan.stages[4].params.keep_removed is False
    assert plan.config.sources[0].on_error == "raise"
    with pytest.raises(ConfigError, match=r"--set 'output': expected KEY=VALUE"):
        load_pipeline(str(path), ["output"])


def test_apply_override_creates_nested_keys():
    assert apply_override({}, "a.b.c=3") == {"a": {"b": {"c": 3}}}
    assert apply_override({"xs": [1, 2]}, "xs[1]=[5, 6]") == {"xs": [1, [5, 6]]}


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_pipeline(str(tmp_path / "nope.yaml"))


def test_spark_profiles_validate():
    from tokenmill.config import load
    from tokenmill.spark import SparkProfile

    for name in ("local", "cluster", "test"):
        profile = load(SparkProfile, ROOT / "conf" / "spark" / f"{name}.yaml")
        assert profile.conf["spark.sql.execution.arrow.pyspark.enabled"] is True
    assert load(SparkProfile, ROOT / "conf" / "spark" / "cluster.yaml").master is None
