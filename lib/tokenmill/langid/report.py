"""Per-language documents and characters of a written output, for the manifest (one small aggregation)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..schema import LANG, TEXT


def language_totals(df: DataFrame) -> dict[str, dict]:
    """{lang: {docs, chars, by_backend}}; chars count only rows whose text was written."""
    keys = [LANG] + (["lang_backend"] if "lang_backend" in df.columns else [])
    chars = F.sum(F.coalesce(F.length(TEXT), F.lit(0))) if TEXT in df.columns else F.lit(0)
    rows = df.groupBy(*keys).agg(F.count("*").alias("docs"), chars.alias("chars")).collect()  # small: langs x backends
    out: dict[str, dict] = {}
    for r in rows:
        entry = out.setdefault(r[LANG] or "null", {"docs": 0, "chars": 0, "by_backend": {}})
        entry["docs"] += r["docs"]
        entry["chars"] += int(r["chars"] or 0)
        if len(keys) > 1:
            backend = r["lang_backend"] or "none"
            entry["by_backend"][backend] = entry["by_backend"].get(backend, 0) + r["docs"]
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["docs"], kv[0])))


def summarize_languages(out) -> dict:
    """The manifest's `output.languages`: documents and characters per language, kept and removed."""
    if LANG not in out.kept.columns:
        return {}
    languages = {"kept": language_totals(out.kept)}
    if out.removed is not None and LANG in out.removed.columns:
        languages["removed"] = language_totals(out.removed)
    return {"languages": languages}


def describe_languages(manifest: dict, label: str) -> list[str]:
    """The console line: the kept documents' languages, most frequent first."""
    languages = manifest["output"].get("languages", {}).get("kept")
    if not languages:
        return []
    shown = ", ".join(f"{k} {v['docs']:,}" for k, v in list(languages.items())[:12])
    more = f" (+{len(languages) - 12} more)" if len(languages) > 12 else ""
    return [f"languages {shown}{more}"]
