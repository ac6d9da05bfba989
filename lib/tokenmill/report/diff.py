"""`tokenmill diff`: what changed between two written runs — per-stage counts, config keys, and a sample of
the documents that moved between kept and removed (read from both outputs' ids, never by rerunning)."""

from __future__ import annotations

from typing import Any

from .explain import _dataset, load_manifest


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys (`stages[2].threshold`)."""
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.update(_flat(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = node
    return out


def _ids(output: str, manifest: dict, which: str) -> dict[str, str | None]:
    """id -> removed_by (None for kept) of one side of a run."""
    path = manifest.get("output", {}).get(which) or f"{output.rstrip('/')}/{which}"
    dataset = _dataset(path)
    if dataset is None:
        return {}
    cols = ["id"] + (["removed_by"] if "removed_by" in dataset.schema.names else [])
    table = dataset.to_table(columns=cols)
    ids = table.column("id").to_pylist()
    reasons = table.column("removed_by").to_pylist() if "removed_by" in cols else [None] * len(ids)
    return dict(zip(ids, reasons, strict=True))


def diff_runs(first: str, second: str, sample: int = 10) -> dict:
    """Per-stage counts of both runs, the config keys that differ, and up to ``sample`` ids (sorted) that
    were kept in one run and removed (or absent) in the other, with the reason."""
    a, b = load_manifest(first), load_manifest(second)
    stages_a = {s["stage"]: s for s in a.get("stages", [])}
    stages_b = {s["stage"]: s for s in b.get("stages", [])}
    order = list(stages_a) + [s for s in stages_b if s not in stages_a]
    stages = []
    for label in order:
        sa, sb = stages_a.get(label), stages_b.get(label)
        stages.append({"stage": label, "rows_in": [sa and sa["rows_in"], sb and sb["rows_in"]],
                       "rows_out": [sa and sa["rows_out"], sb and sb["rows_out"]],
                       "removed": [sa and sa["removed"], sb and sb["removed"]]})
    ca, cb = _flat(a.get("config", {})), _flat(b.get("config", {}))
    ignore = ("output", "name", "work_dir")
    config = {k: [ca.get(k), cb.get(k)] for k in sorted(set(ca) | set(cb))
              if ca.get(k) != cb.get(k) and not k.startswith(ignore)}
    kept_a, kept_b = _ids(first, a, "data"), _ids(second, b, "data")
    gone_a, gone_b = _ids(first, a, "removed"), _ids(second, b, "removed")
    now_removed = sorted(set(kept_a) - set(kept_b))
    now_kept = sorted(set(kept_b) - set(kept_a))
    return {
        "runs": [first, second],
        "rows": [a.get("output", {}).get("rows"), b.get("output", {}).get("rows")],
        "fingerprints": [a.get("fingerprint"), b.get("fingerprint")],
        "stages": stages,
        "config": config,
        "kept_then_removed": {"count": len(now_removed),
                              "sample": [{"id": i, "removed_by": gone_b.get(i)} for i in now_removed[:sample]]},
        "removed_then_kept": {"count": len(now_kept),
                              "sample": [{"id": i, "was_removed_by": gone_a.get(i)} for i in now_kept[:sample]]},
    }


def format_diff(info: dict) -> list[str]:
    """The console lines of a `diff` result."""
    a, b = info["runs"]
    lines = [f"A {a}  ({info['rows'][0]:,} rows kept)", f"B {b}  ({info['rows'][1]:,} rows kept)", ""]
    lines.append(f"{'stage':<22}{'A in':>10}{'A out':>10}{'B in':>10}{'B out':>10}  removed (A -> B)")
    for s in info["stages"]:
        ra, rb = s["removed"]
        changed = {k: [(ra or {}).get(k, 0), (rb or {}).get(k, 0)] for k in sorted(set(ra or {}) | set(rb or {}))}
        shown = ", ".join(f"{k} {x}->{y}" for k, (x, y) in changed.items() if x != y) or "same"
        cell = [("-" if v is None else f"{v:,}") for v in (*s["rows_in"], *s["rows_out"])]
        lines.append(f"{s['stage']:<22}{cell[0]:>10}{cell[2]:>10}{cell[1]:>10}{cell[3]:>10}  {shown}")
    lines.append("")
    if info["config"]:
        lines.append("config keys that differ:")
        lines += [f"  {k}: {va!r} -> {vb!r}" for k, (va, vb) in info["config"].items()]
    else:
        lines.append("config: the same (apart from output and name)")
    moved = info["kept_then_removed"]
    lines.append(f"kept in A, not in B: {moved['count']:,}")
    lines += [f"  {m['id']}  {m['removed_by'] or '(absent from B)'}" for m in moved["sample"]]
    back = info["removed_then_kept"]
    lines.append(f"kept in B, not in A: {back['count']:,}")
    lines += [f"  {m['id']}  {m['was_removed_by'] or '(absent from A)'}" for m in back["sample"]]
    return lines
