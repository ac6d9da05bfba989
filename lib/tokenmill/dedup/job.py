"""The dedup jobs: `dedup_minhash` (a pipeline with a `minhash_dedup` stage, and its report) and
`minhash_bands` (choose bands x rows for a threshold and print the S-curve)."""

from __future__ import annotations

import argparse

from ..cli import Job, config_args
from ..errors import ConfigError
from ..pipeline.job import pipeline_job
from .minhash import choose_bands, s_curve


def bands_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity of a true duplicate (0-1)")
    parser.add_argument("--num-perm", type=int, default=112, help="MinHash permutations (hashes per document)")
    parser.add_argument("--fp-weight", type=float, default=0.5, help="weight of false positives in the choice")
    parser.add_argument("--fn-weight", type=float, default=0.5, help="weight of false negatives in the choice")


def format_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> str:
    """The chosen bands x rows for ``threshold`` and their S-curve, as console lines."""
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"--threshold {threshold}: a Jaccard similarity strictly between 0 and 1, e.g. 0.8")
    if num_perm < 1:
        raise ConfigError(f"--num-perm {num_perm}: the number of MinHash permutations, at least 1 (e.g. 112)")
    if fp_weight < 0 or fn_weight < 0 or fp_weight + fn_weight == 0:
        raise ConfigError("--fp-weight/--fn-weight: non-negative, not both 0")
    b, r, fp, fn = choose_bands(threshold, num_perm, fp_weight, fn_weight)
    lines = [f"bands {b} x rows {r} = {b * r} of {num_perm} hashes   (false-positive area {fp:.4f}, "
             f"false-negative area {fn:.4f}; steepest near {(1 / b) ** (1 / r):.3f})",
             "similarity  P(candidate) = 1 - (1 - s^r)^b"]
    lines += [f"  {s_:.2f}      {p:.4f}" for s_, p in s_curve(b, r).items()]
    return "\n".join(lines)


def bands_job(args: argparse.Namespace) -> int:
    print(format_bands(args.threshold, args.num_perm, args.fp_weight, args.fn_weight))
    return 0


JOBS = [
    Job("dedup_minhash", "near-duplicate removal (MinHash LSH, star edges, verification, connected components) "
        "and its report", config_args, pipeline_job(required_stage="minhash_dedup"),
        own_dry_run=True),
    Job("minhash_bands", "choose bands x rows for a similarity threshold and print the S-curve", bands_args,
        bands_job),
]
