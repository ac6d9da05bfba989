"""`tokenmill explain`: where one document went in a written run, read from its output (never by rerunning).

A document is found by id or URL in `data/` (kept) or `removed/removed_by=<stage>:<reason>/` (removed, with
the audit columns the removing stage declared: signal values, duplicate cluster and survivor, the
benchmark item matched). Outputs are read with pyarrow (column projection and a row filter pushed into the
Parquet scan), so a notebook or the CLI needs no Spark session.
"""

from __future__ import annotations

import difflib
import json
import os
from typing import Any

from ..errors import ConfigError

# Columns shown as the decision's evidence when a row has them (the stages' audit columns and signals).
EVIDENCE = ("quality_failed", "blocked_by", "bad_words", "lang", "lang_score", "lang_mixed", "dup_cluster",
            "dup_cluster_size", "dup_of", "contamination", "contaminated_by", "quality_bucket", "n_tokens",
            "audio_path", "audio_error", "image_path", "image_error", "caption_edits", "split")
SNIPPET = 300


def load_manifest(output: str) -> dict:
    """The run's manifest; a clear error when the folder holds no finished run."""
    import fsspec

    path = output.rstrip("/") + "/manifest.json"
    try:
        with fsspec.open(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        pass
    work = [p for p in (output.rstrip("/") + ".tmp", output.rstrip("/") + "/_temporary") if os.path.exists(p)]
    hint = f" (a partial run is at {work[0]})" if work else ""
    found = run_log(output)
    where = (f"the last run that wrote here logged to {found}" if found else
             "its log is in logs/ (the job prints the log file's path)")
    raise ConfigError(f"{output}: no manifest.json: the run did not finish or never ran here{hint}; {where}; "
                      "rerunning the config resumes it") from None


def run_log(output: str, folder: str | None = None, newest: int = 50) -> str | None:
    """The newest job log (of the last ``newest`` in ``folder``, TOKENMILL_LOG_DIR or logs/) that names
    ``output``: where the run that failed to write it says why."""
    folder = folder or os.environ.get("TOKENMILL_LOG_DIR", "logs")
    if folder == "-" or not os.path.isdir(folder):
        return None
    readers = tuple(f"tokenmill-{job}-" for job in ("report", "explain", "diff"))  # they only read outputs
    logs = sorted((os.path.join(folder, n) for n in os.listdir(folder)
                   if n.endswith(".log") and not n.startswith(readers) and not n.endswith(f"-{os.getpid()}.log")),
                  key=os.path.getmtime, reverse=True)[:newest]
    names = {output.rstrip("/"), os.path.abspath(output).rstrip("/")}
    for path in logs:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(4_000_000)
        except OSError:
            continue
        if any(n in text for n in names):
            return path
    return None


def _dataset(path: str):
    import pyarrow.dataset as ds

    if not os.path.exists(path) and "://" not in path:
        return None
    return ds.dataset(path, format="parquet",
                      partitioning=ds.HivePartitioning.discover(infer_dictionary=False, segment_encoding="uri"))


def output_datasets(manifest: dict, output: str):
    """(kept, removed) pyarrow datasets of a run, where its manifest says they are (None when missing); a
    removed folder that also holds the kept partition (a pointer-committed run) is filtered to removed rows."""
    import pyarrow.dataset as ds

    out = manifest.get("output") if isinstance(manifest.get("output"), dict) else {}
    kept = _dataset(out.get("data") or output.rstrip("/") + "/data")
    removed = _dataset(out.get("removed") or output.rstrip("/") + "/removed")
    if removed is not None and out.get("removed_mixed") and "removed_by" in removed.schema.names:
        removed = removed.filter(ds.field("removed_by").is_valid())
    return kept, removed


def _find(dataset, key: str):
    """Rows whose id, URL or the dataset's own id (``meta.orig_id``, kept by the readers) is ``key``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    names = dataset.schema.names
    cond = ds.field("id") == key
    if "url" in names:
        cond = cond | (ds.field("url") == key)
    if "meta" in names and pa.types.is_map(dataset.schema.field("meta").type):
        cond = cond | (pc.map_lookup(ds.field("meta"), pa.scalar("orig_id"), "first") == key)
    return dataset.to_table(filter=cond).to_pylist()


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SNIPPET:
        return value[:SNIPPET] + f"… ({len(value):,} characters)"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value):,} bytes>"
    if isinstance(value, list) and value and isinstance(value[0], tuple):  # a map column: [(k, v), ...]
        return dict(value)
    if isinstance(value, dict) and "bytes" in value:
        return {k: _shown(v) for k, v in value.items()}
    return value


def _suggest(datasets: list, key: str, n: int = 3) -> list[str]:
    """The ids closest to ``key``: those sharing its first characters, else a sample of the ids."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    ids: list[str] = []
    for d in datasets:
        if d is None:
            continue
        for length in (8, 4, 2):
            table = d.to_table(columns=["id"], filter=pc.starts_with(ds.field("id"), key[:length]))
            if table.num_rows:
                ids += table.column("id").to_pylist()[:100_000]
                break
        else:
            ids += d.head(50_000, columns=["id"]).column("id").to_pylist()
    return difflib.get_close_matches(key, ids, n=n, cutoff=0.3)


def explain(output: str, key: str) -> dict:
    """Where the document ``key`` (an id, a URL or the source's own id) went in the run at ``output``: kept, or removed by which
    stage and why, with the values that decided, its duplicate survivor and any benchmark it matched."""
    manifest = load_manifest(output)
    data, removed = output_datasets(manifest, output)
    stages = {s["stage"]: s for s in manifest.get("stages", [])}
    hits = [("kept", r) for r in (_find(data, key) if data is not None else [])]
    hits += [("removed", r) for r in (_find(removed, key) if removed is not None else [])]
    if not hits:
        note = "" if manifest.get("output", {}).get("keep_removed", True) else \
            " (this run did not keep removed rows: `write: {keep_removed: true}` keeps them for audit)"
        return {"found": False, "key": key, "output": output, "note": note,
                "did_you_mean": _suggest([data, removed], key)}
    out = []
    for where, row in hits:
        entry: dict[str, Any] = {"status": where, "id": row.get("id"), "source": row.get("source"),
                                 "url": row.get("url"), "text": _shown(row.get("text"))}
        if where == "removed":
            label, _, reason = (row.get("removed_by") or "").partition(":")
            entry.update(stage=label, reason=reason, stage_name=stages.get(label, {}).get("name"))
        entry["evidence"] = {c: _shown(row[c]) for c in EVIDENCE if row.get(c) is not None}
        entry["meta"] = _shown(row.get("meta"))
        survivor = row.get("dup_of")
        if survivor and data is not None:
            kept = _find(data, survivor)
            entry["survivor"] = {"id": survivor, "kept": bool(kept),
                                 **({"url": kept[0].get("url"), "text": _shown(kept[0].get("text"))} if kept else {})}
        out.append(entry)
    return {"found": True, "key": key, "output": output, "run": manifest.get("name"),
            "fingerprint": manifest.get("fingerprint"), "rows": out}


def format_explanation(info: dict) -> list[str]:
    """The console lines of an `explain` result."""
    if not info["found"]:
        lines = [f"{info['key']!r}: no document with this id or URL in {info['output']}{info.get('note', '')}"]
        if info.get("did_you_mean"):
            lines.append("did you mean: " + ", ".join(info["did_you_mean"]))
        return lines
    lines = []
    for row in info["rows"]:
        head = f"{row['id']}  ({row['source']})" + (f"  {row['url']}" if row.get("url") else "")
        lines.append(head)
        if row["status"] == "kept":
            lines.append(f"  kept: in {info['output']}/data")
        else:
            lines.append(f"  removed by stage {row['stage']!r}" + (f" ({row['stage_name']})" if row.get("stage_name")
                         and row["stage_name"] != row["stage"] else "") + f", reason: {row['reason']}")
        for k, v in row["evidence"].items():
            lines.append(f"  {k:<18} {v}")
        if "survivor" in row:
            s = row["survivor"]
            lines.append(f"  survivor           {s['id']}" + (f"  {s.get('url') or ''}" if s["kept"] else " (not in data/)"))
        if row.get("text"):
            lines.append(f"  text               {str(row['text'])[:160]!r}")
    return lines
