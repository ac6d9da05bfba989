"""Start Spark's Python workers while the driver plans a run, instead of when the first real task needs them.

The first Arrow task of a session waits for the Python worker to start, the JVM's Arrow and SQL machinery
to load and our modules to import: measured in local[2], 1 s for the first Python task and 2 s more for the
first Arrow one, 3 s of every first run (the CLI's runs are all first runs). A tiny Arrow job started in a
background thread does that work while the driver lists files, peeks at records and builds indexes; the
workers stay up (Spark reuses them) with the modules imported, for the real job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from pyspark.sql import SparkSession

log = logging.getLogger("tokenmill.warmup")
_WARMED: set[str] = set()  # application ids whose workers this driver has warmed
_THREADS: dict[str, threading.Thread] = {}  # application id -> its warm-up job's thread
_LOCK = threading.Lock()


def warm_workers(spark: SparkSession, modules: Iterable[str]) -> threading.Thread | None:
    """Run one tiny Arrow task per core in the background, importing ``modules`` in each Python worker and
    calling the `warm_worker()` of every tokenmill module then imported (e.g. loading compiled code from
    numba's cache). Once per Spark application; a failure is logged, never raised (it only costs time)."""
    sc = spark.sparkContext
    with _LOCK:
        if sc.applicationId in _WARMED:
            return None
        _WARMED.add(sc.applicationId)
    names = sorted(set(modules))
    cores = max(1, sc.defaultParallelism)

    def warm(batches):
        from tokenmill.warmup import import_and_warm

        import_and_warm(names)
        yield from batches

    def job() -> None:
        try:
            sc.setLocalProperty("callSite.short", "warm up the Python workers")
            spark.range(cores, numPartitions=cores).mapInArrow(warm, "id long").collect()  # small: one row per core
        except Exception as exc:  # noqa: BLE001 - the run itself reports real failures
            log.debug("warming the Python workers failed: %s", exc)

    thread = threading.Thread(target=job, name="tokenmill-warm-workers", daemon=True)
    thread.start()
    _THREADS[sc.applicationId] = thread
    return thread


def wait_warm(spark: SparkSession, timeout: float = 60.0) -> None:
    """Wait for this application's warm-up job before the first real one: tasks started while the warm-up
    tasks still hold their workers would fork workers of their own (four where two do)."""
    thread = _THREADS.pop(spark.sparkContext.applicationId, None)
    if thread is not None:
        thread.join(timeout)


def import_and_warm(names: list[str]) -> None:
    """Import ``names``, then call `warm_worker()` of every tokenmill module imported (what a warm-up task
    does in its Python worker)."""
    import importlib
    import sys

    for name in names:
        importlib.import_module(name)
    for name, module in list(sys.modules.items()):
        hook = getattr(module, "warm_worker", None) if name.startswith("tokenmill.") else None
        if callable(hook):
            hook()
