"""Benchmark: the whole FineWeb-order pipeline over generated pages, as a user runs it.

read WARC -> extract (resiliparse, in the reader) -> langid (CLD2) -> English >= 0.65 -> URL filter ->
Gopher repetition, Gopher quality, C4, FineWeb rules -> exact dedup -> MinHash dedup -> decontaminate
(GSM8K) -> tokens -> write. Each size is run twice, each time as the `tokenmill pipeline` command, cold:
- *staged*: every stage is a checkpoint, so each stage is its own segment and its log line ("done in
  X s: stage a -> b") gives the stage's seconds (its Parquet checkpoint write included): documents in per
  second per core, per stage;
- *fused*: the pipeline as users write it (no checkpoint asked for; the runner's own before exact and near
  dedup, `auto_checkpoint`, set the filtered-out rows aside): the whole run's wall time, its peak memory (the JVM's resident set, the Python workers' —
  each and all together, sampled every half second) and the bytes Spark shuffled (its event log);
- *unfused*: the same with `fuse: false` (every Python stage its own `mapInArrow`/`arrow_udf`, as before
  fused Python passes), for the before/after ratio measured in one run.
Corpus: bench/crawlgen.py (English web documents of every kind, other languages, copies). Sizes:
`--pages 100000,1000000`; the cost per document should stay flat between them. `--runs fused` (or
`staged`) runs one kind and keeps the other's figures from the results file.
Results: bench/results/pipeline_1m.json (docs/COST.md projects a Common Crawl snapshot from them).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

LISTS = ROOT / "conf" / "presets" / "lists"


def stages(corpus: str) -> list:
    """The FineWeb order (Penedo et al. 2024, "The FineWeb Datasets"), then decontamination and tokens."""
    return [
        "read",
        {"stage": "langid", "backend": "cld2"},
        {"stage": "language_filter", "languages": ["en"], "min_score": 0.65},
        {"stage": "url_filter", "block_domains": [str(LISTS / "block_domains.txt")],
         "block_urls": [str(LISTS / "block_urls.txt")], "banned_words_files": [str(LISTS / "banned_url_words.txt")],
         "soft_banned_words_files": [str(LISTS / "soft_banned_url_words.txt")]},
        {"stage": "quality_signals"},
        {"stage": "quality_filter", "id": "gopher_repetition", "rules": "gopher_repetition"},
        {"stage": "quality_filter", "id": "gopher_quality", "rules": "gopher_quality"},
        {"stage": "quality_filter", "id": "c4", "rules": "c4", "modifier": {"filter_no_terminal_punct": False}},
        {"stage": "quality_signals", "id": "signals_after_c4"},
        {"stage": "quality_filter", "id": "fineweb", "rules": "fineweb"},
        {"stage": "exact_dedup", "nfkc": True},
        {"stage": "minhash_dedup", "threshold": 0.8},
        {"stage": "decontaminate", "benchmarks": [{"preset": "gsm8k",
                                                   "path": f"{corpus}/benchmarks/gsm8k_sample.jsonl"}],
         "action": "remove"},
        {"stage": "tokens", "tokenizer": f"{corpus}/tokenizer"},
        {"stage": "write", "keep_removed": True},
    ]


def config(corpus: str, work: str, staged: bool, fuse: bool = True) -> dict:
    steps = stages(corpus)
    if staged:  # every stage but the write its own segment
        steps = [({"stage": s} if isinstance(s, str) else dict(s)) for s in steps]
        for s in steps[:-1]:
            s["checkpoint"] = True
    return {"name": "bench-pipeline", "output": os.path.join(work, "out"), "work_dir": os.path.join(work, "work"),
            "fuse": fuse,
            "sources": [{"name": "crawl", "format": "warc", "paths": f"{corpus}/warc/*.warc.gz"}], "stages": steps}


class Memory(threading.Thread):
    """Peak memory of a process tree, sampled: the JVM's resident set, each Python worker's proportional set
    (PSS: pages the forked workers share are divided among them), the workers together."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.stop = root, threading.Event()
        self.jvm = self.worker = self.workers = self.count = 0

    def run(self) -> None:
        while not self.stop.wait(0.5):
            tree = _tree(self.root)
            jvm, workers = 0, []
            for pid, cmd in tree:
                if "java" in cmd.split(" ")[0]:
                    jvm += _memory(pid, "VmRSS:", "status")
                elif "pyspark.daemon" in cmd or "pyspark.worker" in cmd:
                    workers.append(_memory(pid, "Pss:", "smaps_rollup"))  # forked: shared pages counted once
            self.jvm = max(self.jvm, jvm)
            self.worker = max([self.worker, *workers])
            self.workers = max(self.workers, sum(workers))
            self.count = max(self.count, len(workers) - 1)  # the daemon and the workers it forked (same command)


def _tree(root: int) -> list[tuple[int, str]]:
    children: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(p))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out.append((pid, cmd))
        todo += children.get(pid, [])
    return out


def _memory(pid: int, key: str, table: str) -> int:
    try:
        for line in open(f"/proc/{pid}/{table}"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_pipeline(cfg: dict, work: str) -> dict:
    """The command as a user types it, cold, with an event log: seconds, per-segment lines, memory, shuffle."""
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "pipeline.yaml")
    Path(path).write_text(json.dumps(cfg))
    events = os.path.join(work, "events")
    os.makedirs(events, exist_ok=True)
    profile = (ROOT / "conf" / "spark" / "local.yaml").read_text().replace(
        "conf:\n", f"conf:\n  spark.eventLog.enabled: true\n  spark.eventLog.compress: false\n"
        f"  spark.eventLog.dir: file://{events}\n", 1)
    Path(work, "spark.yaml").write_text(profile)
    logs = os.path.join(work, "logs")
    env = dict(os.environ, TOKENMILL_LOG_DIR=logs, PYTHONPATH=str(ROOT / "lib"))
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "tokenmill", "pipeline", "--config", path, "--force", "--quiet",
                             "--spark-profile", os.path.join(work, "spark.yaml")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = Memory(proc.pid)
    memory.start()
    out, err = proc.communicate()
    seconds = time.time() - started
    memory.stop.set()
    if proc.returncode:
        raise SystemExit(out[-2000:] + err[-4000:])
    log = open(max(Path(logs).glob("tokenmill-pipeline-*.log"), key=os.path.getmtime), encoding="utf-8").read()
    segments = []
    for m in re.finditer(r"done in ([\d.]+) s: (.*)", log):
        parts = [re.match(r"(\S+) ([\d,]+) -> ([\d,]+)", p.strip()) for p in m.group(2).split(", ")]
        segments.append({"seconds": float(m.group(1)),
                         "stages": [{"stage": p.group(1), "rows_in": int(p.group(2).replace(",", "")),
                                     "rows_out": int(p.group(3).replace(",", ""))} for p in parts if p]})
    shuffle_write = shuffle_read = 0
    for name in glob.glob(os.path.join(events, "**", "*"), recursive=True):  # Spark 4: eventlog_v2_<app>/events_*
        if os.path.isdir(name):
            continue
        with open(name, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                metrics = json.loads(line).get("Task Metrics") or {}
                shuffle_write += (metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
                read = metrics.get("Shuffle Read Metrics") or {}
                shuffle_read += read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0)
    manifest = json.loads(Path(cfg["output"], "manifest.json").read_text())
    written = {"output": _bytes(cfg["output"]), "work": _bytes(cfg["work_dir"])}
    return {"seconds": round(seconds, 1), "segments": segments, "bytes_written": written,
            "peak_memory_bytes": {"jvm": memory.jvm, "python_worker_max": memory.worker,
                                  "python_workers_total": memory.workers,
                                  "python_workers_peak_count": memory.count},
            "shuffle_bytes": {"written": shuffle_write, "read": shuffle_read},
            "rows": manifest["output"]["rows"],
            "removed": sum(manifest["output"].get("removed_by_reason_and_source", {}).get(r, {}).get(s, 0)
                           for r in manifest["output"].get("removed_by_reason_and_source", {})
                           for s in manifest["output"]["removed_by_reason_and_source"][r])}


def _bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def per_stage(staged: dict, cores: int) -> list[dict]:
    out = []
    for seg in staged["segments"]:
        st = seg["stages"][-1]
        out.append({"stage": st["stage"], "docs_in": st["rows_in"], "docs_out": st["rows_out"],
                    "seconds": seg["seconds"],
                    "docs_per_s_per_core": round(st["rows_in"] / seg["seconds"] / cores, 1) if seg["seconds"] else None})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", default="100000,1000000", help="comma-separated sizes")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tokenmill-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the run folders (default: removed)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pipeline_1m.json"))
    ap.add_argument("--runs", default="staged,fused", help="staged, fused, unfused (a size's other runs, if any, "
                    "is kept from the results file)")
    args = ap.parse_args()
    from crawlgen import write_crawl

    cores = os.cpu_count() or 1
    kinds = set(args.runs.split(","))
    earlier = json.loads(Path(args.out).read_text()) if os.path.exists(args.out) else {}
    result: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                "cpu_count": cores},
                    "stages": [s if isinstance(s, str) else s.get("id", s["stage"]) for s in stages("")],
                    "runs": earlier.get("runs", {})}
    for pages in [int(p) for p in args.pages.split(",")]:
        corpus = os.path.join(args.cache, f"pages-{pages}")
        if not os.path.exists(os.path.join(corpus, "_DONE")):
            shutil.rmtree(corpus, ignore_errors=True)
            started = time.time()
            mix = write_crawl(corpus, pages)
            Path(corpus, "_DONE").write_text(json.dumps({**mix, "seconds": round(time.time() - started)}))
        size = sum(os.path.getsize(f) for f in glob.glob(f"{corpus}/warc/*.warc.gz"))
        work = tempfile.mkdtemp(prefix=f"tokenmill-p{pages}-")
        entry = dict(result["runs"].get(str(pages), {}))
        entry.update({"pages": pages, "mix": json.loads(Path(corpus, "_DONE").read_text())["categories"],
                      "warc_files": len(glob.glob(f"{corpus}/warc/*.warc.gz")), "warc_bytes": size})
        if "staged" in kinds:
            staged = run_pipeline(config(corpus, os.path.join(work, "staged"), True), os.path.join(work, "staged"))
            print(pages, "staged", staged["seconds"], "s", flush=True)
            entry.update({"per_stage": per_stage(staged, cores), "staged_seconds": staged["seconds"],
                          "staged_bytes_written": staged["bytes_written"],
                          "staged_measured": time.strftime("%Y-%m-%d")})
        if "fused" in kinds:
            fused = run_pipeline(config(corpus, os.path.join(work, "fused"), False), os.path.join(work, "fused"))
            print(pages, "fused", fused["seconds"], "s", flush=True)
            entry.update({
                "fused": {k: fused[k] for k in ("seconds", "peak_memory_bytes", "shuffle_bytes", "bytes_written",
                                                "rows", "removed", "segments")},
                "fused_docs_per_s_per_core": round(pages / fused["seconds"] / cores, 1),
                "fused_core_seconds_per_1k_docs": round(fused["seconds"] * cores / pages * 1000, 2),
                "fused_measured": time.strftime("%Y-%m-%d")})
        if "unfused" in kinds:
            unfused = run_pipeline(config(corpus, os.path.join(work, "unfused"), False, fuse=False),
                                   os.path.join(work, "unfused"))
            print(pages, "unfused", unfused["seconds"], "s", flush=True)
            entry.update({
                "unfused": {k: unfused[k] for k in ("seconds", "peak_memory_bytes", "rows", "removed")},
                "unfused_docs_per_s_per_core": round(pages / unfused["seconds"] / cores, 1),
                "unfused_measured": time.strftime("%Y-%m-%d")})
            if "fused" in kinds:
                entry["fused_over_unfused"] = round(unfused["seconds"] / entry["fused"]["seconds"], 2)
        result["runs"][str(pages)] = entry
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
