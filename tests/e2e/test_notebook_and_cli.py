"""The CLI and every job answer --help; errors are one line, the trace in the log."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, sample_config, write_config


def _run(*args, log_dir=None):
    env = {**os.environ, "TOKENMILL_LOG_DIR": str(log_dir) if log_dir else "-"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)


def test_cli_lists_jobs_and_jobs_have_help():
    top = _run("-m", "tokenmill", "--help")
    assert top.returncode == 0 and "pipeline" in top.stdout and "sample" in top.stdout
    for job in ("pipeline", "sample"):
        res = _run(str(ROOT / "jobs" / f"{job}.py"), "--help")
        assert res.returncode == 0 and "usage:" in res.stdout
    assert "--config" in _run("-m", "tokenmill", "pipeline", "--help").stdout


def test_cli_reports_config_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: x\nsources: []\nstages: [read, write]\nbogus: 1\n")
    res = _run("-m", "tokenmill", "pipeline", "--config", str(bad))
    assert res.returncode == 2
    assert f"error: {bad}: bogus: unknown key" in res.stderr and "Traceback" not in res.stderr


def test_data_error_in_a_spark_task_is_one_line_and_the_trace_is_in_the_log(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jsonl").write_text('{"text": "fine"}\n{"text": broken\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output: {tmp_path / 'out'}\nsources:\n  - {{name: j, format: jsonl, paths: {tmp_path / 'in'}/*.jsonl}}\n")
    res = _run("-m", "tokenmill", "pipeline", "--config", str(cfg), "--spark-profile", "test", log_dir=tmp_path / "logs")
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: InputError: {tmp_path / 'in' / 'x.jsonl'}: line 2: invalid JSON: Expecting value at column 10"]
    assert "Traceback" not in res.stderr and "at org.apache" not in res.stderr and len(res.stderr.splitlines()) < 40
    logs = list((tmp_path / "logs").glob("tokenmill-pipeline-*.log"))
    assert len(logs) == 1 and f"(the full log: {logs[0]})" in res.stderr
    assert "Traceback" in logs[0].read_text()
    # the report of that output says the run failed and which log tells why
    res = _run("-m", "tokenmill", "report", "--output", str(tmp_path / "out"), log_dir=tmp_path / "logs")
    assert res.returncode == 2 and "no manifest.json: the run did not finish" in res.stderr
    assert f"the last run that wrote here logged to {logs[0]}" in res.stderr


def test_missing_input_is_reported_before_spark_starts(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output: {tmp_path / 'out'}\nsources:\n  - {{name: j, format: jsonl, paths: {tmp_path}/nothing/*.jsonl}}\n")
    res = _run("-m", "tokenmill", "pipeline", "--config", str(cfg), log_dir=tmp_path / "logs")
    assert res.returncode == 2 and "matched no files" in res.stderr
    assert "SparkContext" not in next((tmp_path / "logs").glob("*.log")).read_text()


def test_bands_arguments_and_job_help_are_clear():
    for args, message in ((["--num-perm", "0"], "--num-perm 0: the number of MinHash permutations, at least 1"),
                          (["--threshold", "1.5"], "--threshold 1.5: a Jaccard similarity strictly between 0 and 1")):
        res = _run("-m", "tokenmill", "minhash_bands", *args)
        assert res.returncode == 2 and f"error: {message}" in res.stderr and "Traceback" not in res.stderr
    for job in ("plan_mixture", "build_mixture"):
        text = " ".join(_run("-m", "tokenmill", job, "--help").stdout.split())
        assert "mixture config (YAML" in text and "pipeline config" not in text


def test_every_spark_job_takes_dry_run_and_quiet():
    import argparse

    from tokenmill.cli import jobs

    for name, spec in jobs().items():
        parser = argparse.ArgumentParser()
        spec.add_args(parser)
        options = {o for a in parser._actions for o in a.option_strings}
        if "--spark-profile" in options:
            assert {"--dry-run", "--quiet"} <= options, name
        if "--config" in options:
            assert {"--set", "--dry-run"} <= options, name


def test_dry_run_prints_the_plan_and_reads_nothing(tmp_path, sample_dir):
    out = tmp_path / "never"
    cfg = write_config(tmp_path / "sample.yaml", sample_config(sample_dir, tmp_path / "elsewhere"))
    res = _run("-m", "tokenmill", "pipeline", "--config", str(cfg), "--dry-run",
               "--set", f"output={out}", "--set", "stages[1].prefix_chars=500", log_dir=tmp_path / "logs")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "dry run: nothing read, nothing written"
    assert "  prefix_chars: 500" in lines and f"output  {out}" in lines
    assert "inputs  5 files (first: file://" in res.stdout
    table = lines[lines.index("stage          type           kind      needs -> adds"):]
    assert table[1:] == [
        "read           read           read      - -> id, text, source, url, meta, removed_by",
        "langid         langid         annotate  text -> lang, lang_score, lang_backend",
        "decontaminate  decontaminate  filter    text -> contamination, contaminated_by",
        "tokens         tokens         annotate  text, source -> n_bytes, n_tokens, n_tokens_estimated",
        "write          write          write     source -> -",
        "",
        "passes (fused; a pass is one mapInArrow, one Python worker per running task)",
        f"  segment 1 -> {out}: read -> [langid] (reads commoncrawl/CC-SAMPLE-2024-10, "
        "commoncrawl/CC-SAMPLE-2024-18-wet, sample-books in its tasks) -> [decontaminate > tokens] -> write",
        "  [a > b]: one Python pass; a stage alone runs as Spark runs it"]
    assert not out.exists() and "SparkContext" not in next((tmp_path / "logs").glob("*.log")).read_text()
    res = _run("-m", "tokenmill", "count_tokens", "--output", "out/sample", "--tokenizer", "data/sample/tokenizer",
               "--dry-run")
    assert res.returncode == 0 and "dry run of count_tokens" in res.stdout and "out/sample" in res.stdout


def test_a_bad_set_value_is_blamed_on_the_set():
    res = _run("-m", "tokenmill", "pipeline", "--config", "conf/pipelines/sample.yaml",
               "--set", "stages[4].keep_removd=true")
    assert res.returncode == 2
    assert ("error: --set stages[4].keep_removd=true: stages[4].keep_removd: unknown key "
            "(did you mean 'keep_removed'?)") in res.stderr
