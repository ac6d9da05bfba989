"""The command line: `tokenmill <job>`, `python -m tokenmill <job>` and every file in jobs/ come here.

One runner owns a job's life: parse arguments, run, print a one-line error (the full log goes to a file).
Each job brings its own `add_args` and `run` next to its code (a `JOBS` list in its package's job.py); the
catalogue (`tokenmill.catalog`) says which modules have jobs, so this module imports no feature package.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .errors import TokenmillError


@dataclass(frozen=True)
class Job:
    name: str
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    # True: `run` itself answers --dry-run (a pipeline's plan, a recipe's budget); otherwise the runner prints
    # the resolved arguments and config and stops.
    own_dry_run: bool = False


# Set while a job runs with --dry-run: run_pipeline prints the plan and raises DryRunDone instead of running.
DRY_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("tokenmill_dry_run", default=False)


class DryRunDone(Exception):
    """The plan of a --dry-run is printed: the job stops here, successfully."""


PIPELINE_CONFIG = "pipeline config (YAML), e.g. conf/pipelines/sample.yaml"


def config_args(parser: argparse.ArgumentParser, what: str = PIPELINE_CONFIG) -> None:
    """--config, --set, --spark-profile and --force: the arguments of every config-driven job."""
    parser.add_argument("--config", required=True, help=what)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set output=out/run2 --set stages[2].keep_removed=true")
    spark_args(parser)
    parser.add_argument("--force", action="store_true", help="recompute even if the output is up to date")


def spark_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spark-profile", default=None,
                        help="conf/spark/<name>.yaml or a path (default: local, or cluster under spark-submit)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines (tasks done, rate, ETA of the running Spark stages)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config and the plan (each stage's needed and added columns); "
                             "read no data, start no Spark")


def output_arg(parser: argparse.ArgumentParser, what: str) -> None:
    """--output: the run folder a job reads (its data/), as explain, diff and report take it; --input names
    any other Parquet data (a folder or a glob) instead."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--output", dest="input", metavar="OUTPUT", help=f"a tokenmill output folder ({what})")
    group.add_argument("--input", dest="input", metavar="PARQUET", help="or any Parquet data: a folder or a glob")


def jobs() -> dict[str, Job]:
    """Every job of the catalogue, by name."""
    from .catalog import load_jobs

    return {j.name: j for j in load_jobs()}


def _friendly(exc: BaseException) -> str | None:
    """The user-facing line of an error raised inside a Spark task (InputError/ConfigError), if any."""
    text = str(exc)
    found = re.findall(r"tokenmill\.errors\.(\w+Error): (.*)", text)
    if found:
        kind, message = found[-1]
        return f"{kind}: {message}"
    return None


class _LogFile:
    """Send this process's stderr (and so the JVM's and the Python workers' logs and traces) to a log file;
    the console keeps tokenmill's own log lines and a one-line error. `TOKENMILL_LOG_DIR=-` turns it off."""

    def __init__(self, job: str):
        self.job = job
        self.path: str | None = None
        self.console = sys.stderr

    def __enter__(self) -> _LogFile:
        folder = os.environ.get("TOKENMILL_LOG_DIR", "logs")
        if folder != "-":
            try:
                os.makedirs(folder, exist_ok=True)
                stamp = time.strftime("%Y%m%d-%H%M%S")
                self.path = os.path.abspath(os.path.join(folder, f"tokenmill-{self.job}-{stamp}-{os.getpid()}.log"))
                sys.stderr.flush()
                self._saved = os.dup(2)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 2)
                os.close(fd)
                self.console = os.fdopen(os.dup(self._saved), "w", buffering=1)
            except OSError:
                self.path = None
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        to_console = logging.StreamHandler(self.console)
        to_console.setFormatter(fmt)
        to_console.addFilter(lambda record: record.name.startswith("tokenmill"))
        root.addHandler(to_console)
        if self.path:
            to_file = logging.StreamHandler(sys.stderr)
            to_file.setFormatter(fmt)
            root.addHandler(to_file)
        self._handlers = root.handlers[-2:] if self.path else root.handlers[-1:]
        logging.getLogger("py4j").setLevel(logging.WARNING)
        logging.getLogger("matplotlib").setLevel(logging.WARNING)
        if self.path:  # the log says which command it is of (`report`/`explain` find a failed run's log by it)
            print(f"tokenmill {self.job} {' '.join(sys.argv[1:])}", file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
        if self.path:
            sys.stderr.flush()
            os.dup2(self._saved, 2)
            os.close(self._saved)

    def error(self, message: str, show_log: bool = True) -> None:
        where = f"\n(the full log: {self.path})" if self.path and show_log else ""
        print(f"error: {message}{where}", file=self.console)


def main(job: str | None = None, argv: list[str] | None = None) -> int:
    """Entry point of `tokenmill`, `python -m tokenmill` and every file in jobs/."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if job is None:
        parser = argparse.ArgumentParser(prog="tokenmill", description="tokenmill: Spark jobs for LM training data")
        sub = parser.add_subparsers(dest="job", metavar="JOB", required=True)
        for spec in jobs().values():
            spec.add_args(sub.add_parser(spec.name, help=spec.help, description=spec.help))
        args = parser.parse_args(argv)
        spec = jobs()[args.job]
    else:
        spec = jobs()[job]
        parser = argparse.ArgumentParser(prog=f"{job}.py", description=spec.help)
        spec.add_args(parser)
        args = parser.parse_args(argv)
    with _LogFile(spec.name) as logs:
        token = DRY_RUN.set(bool(getattr(args, "dry_run", False)))
        try:
            if DRY_RUN.get() and not spec.own_dry_run:
                return _dry_run(spec, args)
            return spec.run(args)
        except DryRunDone:
            return 0
        except TokenmillError as exc:
            logging.getLogger("tokenmill").debug("error", exc_info=True)
            logs.error(str(exc), show_log=False)  # raised by tokenmill itself: the line says it all
            return 2
        except Exception as exc:  # a Spark task failure: show the tokenmill error inside it, if there is one
            message = _friendly(exc)
            traceback.print_exc()  # to the log file
            if message is None:
                logs.error(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                           [:500])
                return 1
            logs.error(message)
            return 1
        finally:
            DRY_RUN.reset(token)


def _dry_run(spec: Job, args: argparse.Namespace) -> int:
    """What a job without a plan of its own shows for --dry-run: its arguments and its config with every
    --set applied (a bad key or value is reported as in a real run)."""
    import yaml

    from .config import load_yaml

    print(f"dry run of {spec.name}: nothing read, nothing written")
    shown = {k: v for k, v in sorted(vars(args).items())
             if v not in (None, False, [], "") and k not in ("dry_run", "overrides", "config", "job")}
    for key, value in shown.items():
        print(f"  --{key.replace('_', '-'):<18} {value}")
    if getattr(args, "config", None):
        print(f"\nconfig {args.config}" + (f" with --set {' --set '.join(args.overrides)}" if args.overrides else ""))
        print(yaml.safe_dump(load_yaml(args.config, args.overrides), sort_keys=False).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
