"""Progress of a long run from Spark's status tracker: tasks done of total, rows so far, rate and ETA of the
running Spark stages, and a line per finished Spark job with its time; on the console (stdout) in local mode, in
the driver log on a cluster. It only reads Spark's own bookkeeping (no extra action on the data), from a daemon
thread: the tracker for tasks, and the driver's status REST API (the UI's, when it is on) for the records the
finished tasks read.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager

log = logging.getLogger("tokenmill.progress")


def _eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Polls the status tracker every ``interval`` seconds; prints at most every ``every`` seconds, and a line
    when a Spark job ends. ``out`` is where lines go (stderr in local mode; the log on a cluster)."""

    def __init__(self, spark, label: str, interval: float = 1.0, every: float = 10.0, out=None,
                 min_job_seconds: float = 3.0) -> None:
        self.spark, self.label, self.interval, self.every = spark, label, interval, every
        self.min_job_seconds = min_job_seconds
        self.out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tokenmill-progress", daemon=True)
        self._started: dict[int, float] = {}  # job id -> first seen
        self._first_done: dict[int, tuple[float, int]] = {}  # stage id -> (time, tasks done) when first seen
        self._last_print = 0.0
        self.lines: list[str] = []
        sc = spark.sparkContext
        self._api = f"{sc.uiWebUrl.rstrip('/')}/api/v1/applications/{sc.applicationId}" if sc.uiWebUrl else None

    def _rows(self, stage_id: int) -> int | None:
        """Records the stage's finished tasks read or wrote (input, shuffle, output), from the status API; None
        without a UI."""
        if self._api is None:
            return None
        try:
            with urllib.request.urlopen(f"{self._api}/stages/{stage_id}", timeout=2) as resp:
                attempts = json.load(resp)
        except (OSError, ValueError):
            return None
        if not attempts:
            return None
        last = attempts[0]  # rows in (read or shuffled in) or out (a map side's shuffle, a write), whichever is more
        return max(int(last.get(k, 0)) for k in ("inputRecords", "shuffleReadRecords", "outputRecords",
                                                 "shuffleWriteRecords"))

    def _say(self, line: str) -> None:
        self.lines.append(line)
        if self.out is not None:
            print(line, file=self.out, flush=True)
        else:
            log.info(line)

    def _loop(self) -> None:
        tracker = self.spark.sparkContext.statusTracker()
        while not self._stop.wait(self.interval):
            try:
                self._poll(tracker)
            except Exception:  # noqa: BLE001 - progress must never break the run (e.g. the context stopping)
                log.debug("progress poll failed", exc_info=True)

    def _poll(self, tracker) -> None:
        now = time.time()
        active = set(tracker.getActiveJobsIds())
        for job_id in active:
            self._started.setdefault(job_id, now)
        for job_id in [j for j in self._started if j not in active]:
            began = self._started.pop(job_id)
            info = tracker.getJobInfo(job_id)
            status = info.status if info else "ENDED"
            if now - began >= self.min_job_seconds or status == "FAILED":  # short jobs (counts, listings) stay quiet
                self._say(f"[{self.label}] Spark job {job_id} {status.lower()} in {now - began:.1f} s")
        if now - self._last_print < self.every:
            return
        parts = []
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is None or not info.numTasks:
                continue
            done = info.numCompletedTasks
            first_t, first_done = self._first_done.setdefault(stage_id, (now, done))
            rate = (done - first_done) / (now - first_t) if now > first_t else 0.0
            eta = f", ETA {_eta((info.numTasks - done) / rate)}" if rate > 0 else ""
            rows = self._rows(stage_id)
            rows_part = f", {rows:,} rows" if rows else ""
            parts.append(f"stage {stage_id} ({info.name.split(' at ')[0]}): {done}/{info.numTasks} tasks"
                         f"{rows_part}, {info.numActiveTasks} running" + (f", {rate:.1f} tasks/s" if rate else "")
                         + eta)
        if parts:
            self._last_print = now
            self._say(f"[{self.label}] " + "; ".join(parts))

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def progress(spark, label: str, quiet: bool = False, every: float = 10.0):
    """Report progress while the block runs (nothing with ``quiet``)."""
    if quiet:
        yield None
        return
    local = spark.sparkContext.master.startswith("local")
    every = float(os.environ.get("TOKENMILL_PROGRESS_EVERY", every))  # seconds between progress lines
    # stdout: the CLI sends stderr (Spark's own logs) to the log file; the console is for these lines
    with Progress(spark, label, every=every, out=sys.stdout if local else None) as p:
        yield p
