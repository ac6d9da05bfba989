"""The warm-up job runs once per application; its tasks import the plan's modules and warm tokenmill's
compiled code in the Python worker (which Spark then reuses)."""

from __future__ import annotations

import sys

from tokenmill import warmup


def test_a_warm_up_job_runs_once_per_application(spark, monkeypatch, caplog):
    monkeypatch.setattr(warmup, "_WARMED", set())
    with caplog.at_level("DEBUG", logger="tokenmill.warmup"):
        thread = warmup.warm_workers(spark, ["colorsys", "tokenmill.text.fast_ngrams"])
        assert thread is not None
        thread.join(120)
    assert not thread.is_alive() and "failed" not in caplog.text
    assert warmup.warm_workers(spark, ["colorsys"]) is None


def test_a_warm_up_task_imports_the_modules_and_calls_their_hooks(monkeypatch):
    import tokenmill.text.fast_ngrams as fast_ngrams

    calls = []
    monkeypatch.setattr(fast_ngrams, "warm_worker", lambda: calls.append("fast_ngrams"))
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    warmup.import_and_warm(["colorsys"])
    assert "colorsys" in sys.modules and calls == ["fast_ngrams"]


def test_the_compiled_functions_load_before_a_first_batch():
    from tokenmill.text import fast_ngrams

    fast_ngrams.warm_worker()  # loads (or compiles) every numba function with the types batches use
    assert all(f.signatures for f in (fast_ngrams._scan_ascii, fast_ngrams._hash_spans, fast_ngrams._lookup))
