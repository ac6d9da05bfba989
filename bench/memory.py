"""Benchmark: the memory a run holds, per pipeline, stage by stage (`fuse: false`) against fused Python
passes (the default), side by side in one run.

Each pipeline runs as a user types it (`python -m tokenmill pipeline --config X --force`), a fresh process,
in Spark local[2]; a sampler (psutil, every 0.2 s) walks the process tree and keeps the peaks of:
  python_workers      Spark's Python worker processes (children of the daemon), and their RSS sum; PSS
                      (proportional set size: shared pages split between the processes sharing them) is
                      what they cost the machine together, RSS what a container's accounting may charge;
  daemon              the pyspark.daemon the workers fork from (one per executor);
  jvm                 the JVM's RSS (in local mode the driver and the executor are one JVM);
  driver_python       the driver's Python process (the CLI).
Pipelines: the sample (langid cascade, decontaminate, tokens), FineWeb's filter order (url, langid, language,
Gopher, C4, FineWeb, words), exact + MinHash dedup, instruction data (SFT filter, dedup, decontaminate,
ChatML, split) and audio (filter_rows + Whisper spectrograms of generated WAV clips).
Results: bench/results/memory.json; README and docs/COST.md size executors from them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


class Sampler:
    """Peaks of the process tree under ``pid`` (see the module docstring), sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = {"python_workers": 0, "python_workers_rss_mb": 0.0, "python_workers_pss_mb": 0.0,
                     "daemon_rss_mb": 0.0, "jvm_rss_mb": 0.0, "driver_python_rss_mb": 0.0,
                     "total_rss_mb": 0.0}
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while not self._stop.is_set():
            try:
                self._sample()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
            self._stop.wait(self.interval)

    def _sample(self):
        mb = 1 << 20
        procs = [self.root, *self.root.children(recursive=True)]
        jvm = [p for p in procs if p.name() == "java"]
        jvm_pids = {p.pid for p in jvm}
        daemons = [p for p in procs if p.ppid() in jvm_pids and _is_daemon(p)]  # workers fork from it
        daemon_pids = {p.pid for p in daemons}
        workers = [p for p in procs if p.ppid() in daemon_pids]
        self.pids.update(p.pid for p in workers)
        rss = sum(_rss(p) for p in workers)
        pss = sum(_pss(p) for p in workers)
        now = {"python_workers": len(workers), "python_workers_rss_mb": rss / mb, "python_workers_pss_mb": pss / mb,
               "daemon_rss_mb": sum(_rss(p) for p in daemons) / mb, "jvm_rss_mb": sum(_rss(p) for p in jvm) / mb,
               "driver_python_rss_mb": _rss(self.root) / mb,
               "total_rss_mb": sum(_rss(p) for p in procs) / mb}
        for k, v in now.items():
            self.peak[k] = max(self.peak[k], v)


def _is_daemon(p: psutil.Process) -> bool:
    try:
        return "pyspark.daemon" in " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _rss(p: psutil.Process) -> int:
    try:
        return p.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def _pss(p: psutil.Process) -> int:
    try:
        return p.memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
        return 0


def pipelines(sample: Path, work: Path) -> dict[str, dict]:
    """The configs measured, pointed at the generated sample and ``work``."""
    from tokenmill.pipeline.plan import resolve_source_presets

    def load(name: str) -> dict:
        path = ROOT / "conf" / "pipelines" / name
        text = path.read_text().replace("data/sample", str(sample)).replace("conf/presets/", f"{ROOT}/conf/presets/")
        text = text.replace("tests/instruct/fixtures", f"{ROOT}/tests/instruct/fixtures")
        return resolve_source_presets(yaml.safe_load(text), str(path))

    out = {"sample": load("sample.yaml"), "fineweb_order": load("quality_fineweb.yaml"),
           "dedup": load("dedup_sample.yaml"), "instruct": load("instruct_filter.yaml")}
    out["dedup"]["stages"][2]["index"] = str(work / "dedup-index")
    audio = load("audio_speech.yaml")
    audio["sources"] = [{"name": "clips", "format": "audio", "paths": str(write_clips(work / "clips"))}]
    audio["stages"][1]["when"] = "source = 'clips' and text is null"
    out["audio"] = audio
    return out


def write_clips(folder: Path, n: int = 40, rate: int = 16_000) -> Path:
    """``n`` WAV clips of 2-20 s (a tone gliding in pitch, with noise), half with a transcript beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        seconds = float(rng.uniform(2, 20))
        t = np.arange(int(seconds * rate)) / rate
        wave_ = 0.2 * np.sin(2 * np.pi * (150 + 30 * np.sin(t)) * t) + 0.01 * rng.standard_normal(len(t))
        with wave.open(str(folder / f"clip{i:03d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes((np.clip(wave_, -1, 1) * 32767).astype("<i2").tobytes())
        if i % 2 == 0:
            (folder / f"clip{i:03d}.txt").write_text(f"clip number {i}")
    return folder


def measure(config: dict, fuse: bool, work: Path, name: str) -> dict:
    """One cold run of ``config`` (fuse on or off) under the sampler."""
    data = dict(config, output=str(work / f"out-{name}-{int(fuse)}"), fuse=fuse,
                work_dir=str(work / f"work-{name}-{int(fuse)}"))
    path = work / f"{name}-{int(fuse)}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"), TOKENMILL_LOG_DIR=str(work / "logs"),
               TOKENMILL_REPORT="0")
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "tokenmill", "pipeline", "--config", str(path), "--force",
                             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Sampler(proc.pid) as sampler:
        out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{name} (fuse={fuse}) failed:\n{out[-2000:]}\n{err[-4000:]}")
    peak = {k: round(v, 1) if isinstance(v, float) else v for k, v in sampler.peak.items()}
    return {"seconds": round(time.time() - started, 2), **peak, "python_workers_started": len(sampler.pids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated pipelines (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory.json"))
    args = ap.parse_args()
    from tokenmill.sample.generate import write_sample

    work = Path(tempfile.mkdtemp(prefix="tokenmill-memory-"))
    sample = work / "sample"
    write_sample(str(sample))
    configs = pipelines(sample, work)
    wanted = [p for p in args.only.split(",") if p] or list(configs)
    results = {}
    for name in wanted:
        results[name] = {}
        for fuse in (False, True):
            key = "fused" if fuse else "stage_by_stage"
            results[name][key] = measure(configs[name], fuse, work, name)
            print(name, key, json.dumps(results[name][key]), flush=True)
    cores = os.cpu_count()
    per_core = {name: round(r["fused"]["python_workers_pss_mb"] / 2, 1) for name, r in results.items()}
    doc = {"bench": "memory", "when": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {cores} cores",
           "spark_master": "local[2]", "pipelines": results,
           "python_pss_mb_per_running_task_fused": per_core,
           "note": "peaks over the whole cold run; in local mode the driver and the executor are one JVM"}
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
