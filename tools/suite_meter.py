"""Run a command (the test suite) and print its wall time and the machine's peak memory in use while it ran.

Memory in use is MemTotal - MemAvailable from /proc/meminfo, sampled every half second: what the suite and
everything it starts (Spark's JVMs, Python workers, browsers) hold together, as the kernel's OOM killer
sees the machine. `make test` wraps pytest in it; the suite's targets (docs/COST.md): at most 12 minutes
and 12 GB on a 2-core, 24 GB machine. The command's last output line is repeated at the end, so the
test runner's closing line stays the last line printed.

    python tools/suite_meter.py -- python -m pytest -q
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time


def used_bytes() -> int:
    """MemTotal - MemAvailable, in bytes."""
    info = {}
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1:] if "--" in argv else argv
    if not command:
        print(__doc__)
        return 2
    start_used = used_bytes()
    peak = [start_used]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], used_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.time()
    last = ""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.strip():
            last = line.rstrip("\n")
    code = proc.wait()
    done.set()
    sampler.join()
    seconds = time.time() - started
    gb = 1 << 30
    print(f"\nsuite: {seconds / 60:.1f} min, peak memory in use {peak[0] / gb:.1f} GB "
          f"({(peak[0] - start_used) / gb:.1f} GB above the {start_used / gb:.1f} GB in use at the start), "
          f"exit code {code}")
    if last:
        print(last)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
