"""Accuracy of a language identifier on labelled texts, from small (gold, predicted, score) count tables.

Spark aggregates the labelled set to counts per (gold, predicted, score bucket, long text); everything here
works on those counts, so a million-text evaluation set costs the driver no more than a small one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .codes import UND

# Pairs and groups that language identifiers confuse (FineWeb-2, OpenLID and GlotLID papers discuss these).
CLOSE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("es", "pt", "gl", "ca"), ("da", "no", "nn", "sv"), ("cs", "sk"), ("id", "ms"), ("hr", "sr", "bs", "sh"),
    ("ru", "uk", "be"), ("bg", "mk"), ("hi", "mr", "ne"), ("fa", "ps"), ("zh", "ja"), ("de", "lb", "nl", "af"),
)
THRESHOLDS = (0.0, 0.3, 0.5, 0.65, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)
SCORE_BUCKETS = 1000  # scores are counted in buckets of 0.001


@dataclass(frozen=True)
class Count:
    gold: str
    pred: str
    bucket: int  # floor(score * SCORE_BUCKETS)
    long: bool  # text of at least `long_chars` characters
    n: int


def _prf(pairs: dict[tuple[str, str], int], languages: list[str]) -> dict[str, dict]:
    out = {}
    for lang in languages:
        tp = pairs.get((lang, lang), 0)
        fp = sum(n for (g, p), n in pairs.items() if p == lang and g != lang)
        fn = sum(n for (g, p), n in pairs.items() if g == lang and p != lang)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[lang] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    return out


def _summary(pairs: dict[tuple[str, str], int], languages: list[str]) -> dict:
    per = _prf(pairs, languages)
    total = sum(pairs.values())
    correct = sum(n for (g, p), n in pairs.items() if g == p)
    k = max(len(languages), 1)
    return {"texts": total, "accuracy": correct / total if total else 0.0,
            "macro_precision": sum(v["precision"] for v in per.values()) / k,
            "macro_recall": sum(v["recall"] for v in per.values()) / k,
            "macro_f1": sum(v["f1"] for v in per.values()) / k, "per_language": per}


def report(counts: list[Count], thresholds: tuple[float, ...] = THRESHOLDS) -> dict:
    """Per-language P/R/F1, macro averages (all texts and long texts), close-language confusions, and
    accuracy / coverage / macro-F1 when predictions under each threshold count as `und`."""
    languages = sorted({c.gold for c in counts})
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    long_pairs: dict[tuple[str, str], int] = defaultdict(int)
    for c in counts:
        pairs[(c.gold, c.pred)] += c.n
        if c.long:
            long_pairs[(c.gold, c.pred)] += c.n
    out = {"languages": languages, "all": _summary(pairs, languages), "long": _summary(long_pairs, languages)}
    confusions = sorted(((g, p, n) for (g, p), n in pairs.items() if g != p), key=lambda x: (-x[2], x[0], x[1]))
    out["confusions"] = [{"gold": g, "pred": p, "n": n} for g, p, n in confusions]
    groups = []
    for group in CLOSE_GROUPS:
        present = [lang for lang in group if lang in languages]
        if len(present) < 2:
            continue
        members = list(group)
        matrix = {g: {p: pairs.get((g, p), 0) for p in members} for g in present}
        groups.append({"group": members, "matrix": matrix,
                       "within_group_errors": sum(matrix[g][p] for g in present for p in members if p != g)})
    out["close_groups"] = groups
    curve = []
    total = sum(pairs.values())
    for t in thresholds:
        cut = round(t * SCORE_BUCKETS)
        at: dict[tuple[str, str], int] = defaultdict(int)
        for c in counts:
            at[(c.gold, c.pred if c.bucket >= cut and c.pred != UND else UND)] += c.n
        covered = sum(n for (_, p), n in at.items() if p != UND)
        correct = sum(n for (g, p), n in at.items() if p == g)
        curve.append({"threshold": t, "coverage": covered / total if total else 0.0,
                      "accuracy_covered": correct / covered if covered else 0.0,
                      "accuracy_all": correct / total if total else 0.0,
                      "macro_f1": _summary(at, languages)["macro_f1"]})
    out["thresholds"] = curve
    return out


def format_report(rep: dict, long_chars: int) -> str:
    """The report as console tables."""
    lines = [f"{'lang':<6}{'precision':>10}{'recall':>9}{'f1':>8}{'support':>9}"]
    for lang, v in rep["all"]["per_language"].items():
        lines.append(f"{lang:<6}{v['precision']:>10.3f}{v['recall']:>9.3f}{v['f1']:>8.3f}{v['support']:>9}")
    a, lg = rep["all"], rep["long"]
    lines.append(f"{'macro':<6}{a['macro_precision']:>10.3f}{a['macro_recall']:>9.3f}{a['macro_f1']:>8.3f}"
                 f"{a['texts']:>9}")
    lines.append(f"accuracy {a['accuracy']:.4f}; texts of {long_chars}+ characters: macro-F1 {lg['macro_f1']:.4f}, "
                 f"accuracy {lg['accuracy']:.4f} ({lg['texts']} texts)")
    if rep["close_groups"]:
        lines.append("\nclose-language confusions (rows: gold, columns: predicted)")
        for g in rep["close_groups"]:
            members = g["group"]
            lines.append("      " + "".join(f"{m:>6}" for m in members))
            for gold, row in g["matrix"].items():
                lines.append(f"{gold:<6}" + "".join(f"{row[m]:>6}" for m in members))
    top = [f"{c['gold']}->{c['pred']} {c['n']}" for c in rep["confusions"][:12]]
    lines.append("\nmost frequent errors: " + (", ".join(top) if top else "none"))
    lines.append(f"\n{'threshold':>9}{'coverage':>10}{'acc(kept)':>11}{'acc(all)':>10}{'macro-F1':>10}")
    for row in rep["thresholds"]:
        lines.append(f"{row['threshold']:>9.2f}{row['coverage']:>10.3f}{row['accuracy_covered']:>11.4f}"
                     f"{row['accuracy_all']:>10.4f}{row['macro_f1']:>10.4f}")
    return "\n".join(lines)
