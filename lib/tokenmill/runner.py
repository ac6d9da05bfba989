"""One runner owns a job's life: parse arguments, validate the config, build the session, run, report, stop.

Job files in jobs/ are two lines that call `main(<job>)`; `python -m tokenmill <job>` does the same.
"""

from __future__ import annotations

import argparse
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


def _config_args(parser: argparse.ArgumentParser, what: str = "pipeline config (YAML), e.g. conf/sample.yaml") -> None:
    parser.add_argument("--config", required=True, help=what)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set output=out/run2 --set stages[2].keep_removed=true")
    parser.add_argument("--spark-profile", default=None,
                        help="conf/spark/<name>.yaml or a path (default: local, or cluster under spark-submit)")
    parser.add_argument("--force", action="store_true", help="recompute even if the output is up to date")


def _pipeline(args: argparse.Namespace, required_stage: str | None = None):
    """Load, run and print a pipeline config; returns the run result."""
    from .pipeline import load_pipeline, run
    from .report.manifest import format_stage_table
    from .spark import build_session

    plan = load_pipeline(args.config, args.overrides)
    if required_stage and not any(s.name == required_stage for s in plan.stages):
        from .errors import ConfigError

        raise ConfigError(f"{args.config}: stages: no `{required_stage}` stage")
    plan.inputs()  # a missing input path, or an output that may never be written, is reported before Spark starts
    from .errors import OutputError
    from .io.outputs import protected_reason

    reason = protected_reason(plan.config.output, plan.input_paths())
    if reason:
        raise OutputError(f"output {plan.config.output}: refusing to write there: {reason}")
    spark = build_session(args.spark_profile, app_name=f"tokenmill-{plan.config.name}")
    try:
        result = run(spark, plan, force=args.force)
    finally:
        spark.stop()
    state = "up to date (skipped, same config and inputs)" if result.skipped else "written"
    print(format_stage_table(result.manifest["stages"]))
    print(f"\noutput   {result.output}/data   ({result.manifest['output']['rows']:,} rows, {state})")
    languages = result.manifest["output"].get("languages", {}).get("kept")
    if languages:
        shown = ", ".join(f"{k} {v['docs']:,}" for k, v in list(languages.items())[:12])
        more = f" (+{len(languages) - 12} more)" if len(languages) > 12 else ""
        print(f"languages {shown}{more}")
    print(f"removed  {result.output}/removed")
    print(f"manifest {result.output}/manifest.json")
    return result


def _run_pipeline(args: argparse.Namespace) -> int:
    _pipeline(args)
    return 0


def _run_decontaminate(args: argparse.Namespace) -> int:
    """The pipeline of a config with a `decontaminate` stage, then the per-benchmark report."""
    result = _pipeline(args, required_stage="decontaminate")
    report = result.manifest["output"].get("decontamination", {"benchmarks": {}})
    print(f"\n{'benchmark':<16}{'items found':>12}{'documents':>11}  sources")
    for name, b in report["benchmarks"].items():
        print(f"{name:<16}{b['items_found']:>12,}{b['documents']:>11,}  {', '.join(b['sources'])}")
    if not report["benchmarks"]:
        print("no benchmark item found")
    print(f"report   {result.output}/decontamination.csv")
    return 0


def _run_dedup_minhash(args: argparse.Namespace) -> int:
    """The pipeline of a config with a `minhash_dedup` stage, then its report."""
    result = _pipeline(args, required_stage="minhash_dedup")
    for label, rep in result.manifest.get("stage_reports", {}).items():
        if "candidate_pairs" not in rep:
            continue
        print(f"\n{label}: {rep['bands']} bands x {rep['rows']} rows, threshold {rep['threshold']}, "
              f"S-curve {rep['s_curve']}")
        print(f"candidate pairs {rep['candidate_pairs']:,}, after verification {rep['pairs_after_verification']:,}; "
              f"clusters by size {rep['clusters_by_size']}; components in {rep['connected_components']['rounds']} rounds")
        if "index" in rep:
            idx = rep["index"]
            print(f"index {idx['path']}: {idx['added_documents']:,} documents added, {idx['documents']:,} in all")
    return 0


def _bands_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity of a true duplicate (0-1)")
    parser.add_argument("--num-perm", type=int, default=112, help="MinHash permutations (hashes per document)")
    parser.add_argument("--fp-weight", type=float, default=0.5, help="weight of false positives in the choice")
    parser.add_argument("--fn-weight", type=float, default=0.5, help="weight of false negatives in the choice")


def _run_bands(args: argparse.Namespace) -> int:
    from .dedup.minhash import choose_bands, s_curve
    from .errors import ConfigError

    if not 0.0 < args.threshold < 1.0:
        raise ConfigError(f"--threshold {args.threshold}: a Jaccard similarity strictly between 0 and 1, e.g. 0.8")
    if args.num_perm < 1:
        raise ConfigError(f"--num-perm {args.num_perm}: the number of MinHash permutations, at least 1 (e.g. 112)")
    if args.fp_weight < 0 or args.fn_weight < 0 or args.fp_weight + args.fn_weight == 0:
        raise ConfigError("--fp-weight/--fn-weight: non-negative, not both 0")

    b, r, fp, fn = choose_bands(args.threshold, args.num_perm, args.fp_weight, args.fn_weight)
    print(f"bands {b} x rows {r} = {b * r} of {args.num_perm} hashes   (false-positive area {fp:.4f}, "
          f"false-negative area {fn:.4f}; steepest near {(1 / b) ** (1 / r):.3f})")
    print("similarity  P(candidate) = 1 - (1 - s^r)^b")
    for s_, p in s_curve(b, r).items():
        print(f"  {s_:.2f}      {p:.4f}")
    return 0


def _sample_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/sample", help="folder to write the sample corpus into")
    parser.add_argument("--pages", type=int, default=None, help="number of HTML pages in the WARC (default: the sample size)")
    parser.add_argument("--seed", type=int, default=1234)


def _run_sample(args: argparse.Namespace) -> int:
    from .sample.generate import write_sample

    summary = write_sample(args.out, seed=args.seed, n_pages=args.pages)
    for name, path in summary["files"].items():
        print(f"{name:<10} {path}")
    return 0


def _count_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="Parquet data, or a pipeline output folder (uses its data/)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer directory (or cached hub id); without it the "
                        "existing n_tokens column is summed")
    parser.add_argument("--add-special-tokens", action="store_true")
    parser.add_argument("--calibrate", type=int, default=0, metavar="DOCS",
                        help="also measure bytes/token per source on a sample of DOCS documents, with its held-out error")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the table as JSON (usable as `manifest:` in a mixture config)")
    parser.add_argument("--spark-profile", default=None)


def _run_count(args: argparse.Namespace) -> int:
    from .tokens.job import count_tokens_job

    return count_tokens_job(args)


MIXTURE_CONFIG = "mixture config (YAML: output, plan, sources, build), e.g. conf/mixture/sample.yaml"


def _mixture_args(parser: argparse.ArgumentParser) -> None:
    _config_args(parser, MIXTURE_CONFIG)
    parser.add_argument("--out", default=None, help="where to write plan.json (default: <output>.plan.json)")


def _build_args(parser: argparse.ArgumentParser) -> None:
    _config_args(parser, MIXTURE_CONFIG)
    parser.add_argument("--plan", default=None, help="use this plan.json instead of planning from the data")


def _run_plan(args: argparse.Namespace) -> int:
    from .mixing.job import plan_job

    return plan_job(args)


def _run_build(args: argparse.Namespace) -> int:
    from .mixing.job import build_job

    return build_job(args)


def _langid_eval_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="labelled JSONL (any fsspec/Hadoop path): one text and its language per line")
    parser.add_argument("--config", default="conf/langid/eval.yaml",
                        help="a langid stage entry, or a pipeline config whose first langid stage is used")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a langid setting, e.g. --set cascade.min_score=0.8")
    parser.add_argument("--backend", default=None, choices=["fasttext", "cld2", "lingua", "cascade"])
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--label-field", default="lang")
    parser.add_argument("--long-chars", type=int, default=50, help="also report texts of at least this many characters")
    parser.add_argument("--out", default=None, help="write the report as JSON")
    parser.add_argument("--spark-profile", default=None)


def _run_langid_eval(args: argparse.Namespace) -> int:
    from .langid.job import langid_eval_job

    return langid_eval_job(args)


def _quality_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="a pipeline output folder (or its data/) with qs_* columns")
    parser.add_argument("--rules", required=True, help="rule set name (conf/quality/) or YAML path")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="e.g. overrides.gopher_short_doc.min=100 or disable=[gopher_long_doc]")
    parser.add_argument("--out", default=None, help="write the counts as JSON")
    parser.add_argument("--spark-profile", default=None)


def _run_quality_rules(args: argparse.Namespace) -> int:
    from .quality.job import quality_rules_job

    return quality_rules_job(args)


def _train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training YAML, e.g. conf/classify/train_sample.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set model_out=models/q2 --set features.idf=true")
    parser.add_argument("--spark-profile", default=None)


def _run_train(args: argparse.Namespace) -> int:
    from .classify.job import train_quality_job

    return train_quality_job(args)


JOBS: dict[str, Job] = {
    "pipeline": Job("pipeline", "run the stages of a pipeline config (read ... write) in Spark",
                    _config_args, _run_pipeline),
    "count_tokens": Job("count_tokens", "count documents, bytes and tokens per source of a Parquet dataset",
                        _count_args, _run_count),
    "plan_mixture": Job("plan_mixture", "plan a token budget (Chinchilla laws) and per-source targets; writes plan.json",
                        _mixture_args, _run_plan),
    "build_mixture": Job("build_mixture", "build the token-budgeted mixture: Parquet shards + manifest",
                         _build_args, _run_build),
    "decontaminate": Job("decontaminate", "find benchmark test items in the data (n-gram index), flag/remove/cut, "
                         "report per benchmark", _config_args, _run_decontaminate),
    "langid_eval": Job("langid_eval", "per-language precision/recall/F1, confusions and threshold curve of a "
                       "langid setup on a labelled JSONL", _langid_eval_args, _run_langid_eval),
    "quality_rules": Job("quality_rules", "re-apply a quality rule set with new thresholds to stored qs_* signals "
                         "(per-rule counts, nothing recomputed)", _quality_args, _run_quality_rules),
    "dedup_minhash": Job("dedup_minhash", "near-duplicate removal (MinHash LSH, star edges, verification, "
                         "connected components) and its report", _config_args, _run_dedup_minhash),
    "minhash_bands": Job("minhash_bands", "choose bands x rows for a similarity threshold and print the S-curve",
                         _bands_args, _run_bands),
    "train_quality": Job("train_quality", "train a quality classifier (HashingTF + logistic regression) in Spark; "
                         "prints ROC-AUC, precision/recall, calibration; saves the PipelineModel",
                         _train_args, _run_train),
    "sample": Job("sample", "write the deterministic sample crawl (WARC, WET, JSONL, Parquet)",
                  _sample_args, _run_sample),
}


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
        for spec in JOBS.values():
            spec.add_args(sub.add_parser(spec.name, help=spec.help, description=spec.help))
        args = parser.parse_args(argv)
        spec = JOBS[args.job]
    else:
        spec = JOBS[job]
        parser = argparse.ArgumentParser(prog=f"{job}.py", description=spec.help)
        spec.add_args(parser)
        args = parser.parse_args(argv)
    with _LogFile(spec.name) as logs:
        try:
            return spec.run(args)
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


if __name__ == "__main__":
    sys.exit(main())
