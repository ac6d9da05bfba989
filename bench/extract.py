"""Benchmark: HTML main-text extraction, accuracy and speed per extractor configuration.

Data: the article-extraction benchmark in ../shared/dev-data/aeb/ (181 real news and blog pages as WARC
`response` records, and the human-checked main text of each, matched by URL). Metric (the benchmark's
own): token precision, recall and F1 of the extracted text against `articleBody`, whitespace tokens with
multiset overlap, averaged over pages (an empty extraction scores 0). Speed: pages per second in one
process (= one core), best of `--repeat` passes over the 181 pages, decoding included. Also the share of
pages with empty text. Results: bench/results/extract.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tokenmill.io.html import decode, extract_text  # noqa: E402


def _named(name: str, main_content: bool = True):
    return lambda h: extract_text(h, name, main_content)


def _trafilatura(**kw):
    import trafilatura

    return lambda h: (trafilatura.extract(h, include_comments=False, include_tables=True, deduplicate=False, **kw)
                      or "").strip()


EXTRACTORS = {
    "resiliparse_clean (default)": _named("resiliparse_clean"),
    "resiliparse": _named("resiliparse"),
    "resiliparse_all_text": _named("resiliparse", main_content=False),
    "trafilatura (tokenmill: precision)": _named("trafilatura"),
    "trafilatura_default": _trafilatura(),
    "trafilatura_fast": _trafilatura(fast=True),
    "trafilatura_recall": _trafilatura(favor_recall=True),
}

AEB = ROOT.parent / "shared" / "dev-data" / "aeb"


def pages() -> tuple[list[str], list[str]]:
    """(html, ground truth) per page of the benchmark, decoded as the WARC reader decodes them."""
    from warcio.archiveiterator import ArchiveIterator

    truth = {}
    for line in (AEB / "aeb-ground-truth.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        truth[row["url"]] = row["articleBody"]
    htmls, golds = [], []
    with open(AEB / "aeb-pages.warc.gz", "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "response":
                continue
            url = rec.rec_headers.get_header("WARC-Target-URI")
            declared = None
            ctype = rec.http_headers.get_header("Content-Type") if rec.http_headers else None
            if ctype and "charset=" in ctype:
                declared = ctype.split("charset=")[-1].split(";")[0].strip()
            html, _, _ = decode(rec.content_stream().read(), declared)
            if url in truth:
                htmls.append(html)
                golds.append(truth[url])
    return htmls, golds


def prf(pred: str, gold: str) -> tuple[float, float, float]:
    p_tokens, g_tokens = Counter(pred.split()), Counter(gold.split())
    if not p_tokens or not g_tokens:
        return 0.0, 0.0, 0.0
    overlap = sum((p_tokens & g_tokens).values())
    precision, recall = overlap / sum(p_tokens.values()), overlap / sum(g_tokens.values())
    f1 = 2 * precision * recall / (precision + recall) if overlap else 0.0
    return precision, recall, f1


def score(texts: list[str], golds: list[str]) -> dict:
    rows = [prf(t, g) for t, g in zip(texts, golds, strict=True)]
    n = len(rows)
    return {"precision": round(sum(r[0] for r in rows) / n, 4), "recall": round(sum(r[1] for r in rows) / n, 4),
            "f1": round(sum(r[2] for r in rows) / n, 4), "empty_share": round(sum(not t for t in texts) / n, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "extract.json"))
    args = ap.parse_args()
    htmls, golds = pages()
    out: dict = {"pages": len(htmls), "extractors": {}}
    for name, fn in EXTRACTORS.items():
        best, texts = None, []
        for _ in range(args.repeat):
            start = time.perf_counter()
            texts = [fn(h) for h in htmls]
            seconds = time.perf_counter() - start
            best = seconds if best is None else min(best, seconds)
        entry = {**score(texts, golds), "pages_per_s_per_core": round(len(htmls) / best, 1)}
        out["extractors"][name] = entry
        print(f"{name:<28} F1 {entry['f1']:.4f}  P {entry['precision']:.4f}  R {entry['recall']:.4f}  "
              f"empty {entry['empty_share']:.3f}  {entry['pages_per_s_per_core']:>7.1f} pages/s/core", flush=True)
    base = out["extractors"].get("trafilatura_default")
    if base:
        out["speed_vs_trafilatura_default"] = {k: round(v["pages_per_s_per_core"] / base["pages_per_s_per_core"], 2)
                                               for k, v in out["extractors"].items()}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
