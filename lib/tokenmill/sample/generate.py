"""Write the sample crawl deterministically: the same seed gives byte-identical files.

WARC files with HTML pages in eight languages wrapped in navigation boilerplate, spam and low-quality
pages, exact and near-duplicate pages, pages quoting benchmark questions, non-HTML and non-200 responses;
a WET file; a JSONL (Dolma layout) and a Parquet (FineWeb layout) source; a small benchmark file.
`index.json` lists every page with its category so tests can assert exact counts.
"""

from __future__ import annotations

import gzip
import html
import io
import json
import os
import random
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from ..tokens.train import train_bpe
from .texts import BENCHMARK_ITEMS, LOREM, NAV, SENTENCES, SPAM, TITLES

LANGS = sorted(SENTENCES)
BASE_DATE = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
DEFAULT_PAGES = 200
PAGES_PER_WARC = 1000


def _uuid(seed: int, *parts) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, '|'.join(map(str, (seed, *parts))))}>"


def _paragraphs(rng: random.Random, lang: str, n: int) -> list[str]:
    pool = SENTENCES[lang]
    return [" ".join(rng.sample(pool, rng.randint(3, 5))) for _ in range(n)]


def _page_html(title: str, paragraphs: list[str], lang: str, charset: str | None = "utf-8",
               extra_head: str = "") -> str:
    nav = " | ".join(f'<a href="/{n.lower().replace(" ", "-")}">{n}</a>' for n in NAV)
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    meta = f'<meta charset="{charset}">' if charset else ""
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head>{meta}<title>{html.escape(title)}</title>{extra_head}'
            f'<script>var tracker = "x";</script></head>\n<body><header><nav>{nav}</nav></header>\n'
            f"<main><article><h1>{html.escape(title)}</h1>\n{body}\n</article></main>\n"
            f'<footer><p>Copyright 2024 Example Media. All rights reserved.</p><nav>{nav}</nav></footer>'
            f"</body></html>\n")


def plan_pages(seed: int = 1234, n_pages: int | None = None) -> list[dict]:
    """The list of HTML pages (url, lang, category, title, paragraphs), fixed by the seed."""
    rng = random.Random(seed)
    n = n_pages or DEFAULT_PAGES
    n_special = max(1, n // 20)  # 5% each: exact dups, near dups, spam, low quality
    n_normal = n - 4 * n_special - len(BENCHMARK_ITEMS)
    pages: list[dict] = []
    for i in range(n_normal):
        lang = LANGS[i % len(LANGS)]
        pages.append({"url": f"https://{lang}.example.org/article/{i:06d}", "lang": lang, "category": "normal",
                      "title": rng.choice(TITLES[lang]), "paragraphs": _paragraphs(rng, lang, rng.randint(3, 6))})
    originals = pages[:]
    for k in range(n_special):
        src = originals[(k * 7) % len(originals)]
        pages.append({**src, "url": f"https://mirror{k % 3}.example.net/copy/{k:05d}", "category": "exact_dup",
                      "dup_of": src["url"]})
    for k in range(n_special):
        src = originals[(k * 11 + 3) % len(originals)]
        paragraphs = list(src["paragraphs"])
        paragraphs[-1] = paragraphs[-1] + " " + rng.choice(SENTENCES[src["lang"]])
        pages.append({**src, "url": f"https://aggregator.example.com/story/{k:05d}", "category": "near_dup",
                      "paragraphs": paragraphs, "dup_of": src["url"]})
    for k in range(n_special):
        spam = rng.choice(SPAM)
        pages.append({"url": f"https://deals{k}.example.biz/offer", "lang": "en", "category": "spam",
                      "title": "BEST DEALS", "paragraphs": [spam] * rng.randint(4, 8)})
    for k in range(n_special):
        kind = k % 3
        paragraphs = [[LOREM, LOREM], ["Please enable JavaScript to view this page."], ["Read more", "Next"]][kind]
        pages.append({"url": f"https://thin.example.info/page/{k:05d}", "lang": "en", "category": "low_quality",
                      "title": "Page", "paragraphs": paragraphs})
    for k, item in enumerate(BENCHMARK_ITEMS):
        intro = "Can anyone help me with my homework? The question is:"
        pages.append({"url": f"https://forum.example.edu/thread/{k:05d}", "lang": "en", "category": "benchmark_quote",
                      "title": "Homework help", "paragraphs": [intro, item["question"],
                                                               "I got a different number than my friend."]})
    order = list(range(len(pages)))
    rng.shuffle(order)
    return [pages[i] for i in order]


def _response(writer: WARCWriter, seed: int, url: str, when: datetime, status: str, content_type: str | None,
              payload: bytes) -> None:
    headers = [("Content-Type", content_type)] if content_type else []
    headers.append(("Content-Length", str(len(payload))))
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    date = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    request = writer.create_warc_record(url, "request", payload=io.BytesIO(f"GET {url} HTTP/1.1\r\n\r\n".encode()),
                                        warc_headers_dict={"WARC-Record-ID": _uuid(seed, url, "request"),
                                                           "WARC-Date": date})
    writer.write_record(request)
    record = writer.create_warc_record(url, "response", payload=io.BytesIO(payload), http_headers=http,
                                       warc_headers_dict={"WARC-Record-ID": _uuid(seed, url, "response"),
                                                          "WARC-Date": date})
    writer.write_record(record)


def write_warc(path: str, pages: list[dict], seed: int, extras: bool) -> dict:
    """One WARC.gz: warcinfo, then a request + response pair per page (and odd responses if ``extras``)."""
    counts = {"html": 0, "not_html": 0, "http_status": 0, "empty_text": 0}
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        info = writer.create_warcinfo_record(os.path.basename(path), {"software": "tokenmill-sample"})
        info.rec_headers.replace_header("WARC-Record-ID", _uuid(seed, os.path.basename(path), "warcinfo"))
        info.rec_headers.replace_header("WARC-Date", BASE_DATE.strftime("%Y-%m-%dT%H:%M:%SZ"))
        writer.write_record(info)
        for i, page in enumerate(pages):
            when = BASE_DATE + timedelta(minutes=i)
            charset = "utf-8"
            payload_html = _page_html(page["title"], page["paragraphs"], page["lang"], charset)
            content_type = "text/html; charset=utf-8"
            if page["lang"] in ("de", "fr") and i % 4 == 0:
                # Legacy encodings: declared only in <meta>, or not at all.
                charset = "windows-1252"
                payload_html = _page_html(page["title"], page["paragraphs"], page["lang"],
                                          charset if i % 8 == 0 else None)
                content_type = "text/html"
            _response(writer, seed, page["url"], when, "200 OK", content_type,
                      payload_html.encode(charset, errors="replace"))
            counts["html"] += 1
        if extras:
            extra_when = BASE_DATE + timedelta(days=1)
            _response(writer, seed, "https://en.example.org/logo.png", extra_when, "200 OK", "image/png",
                      b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
            _response(writer, seed, "https://en.example.org/report.pdf", extra_when, "200 OK", "application/pdf",
                      b"%PDF-1.4\n%fake but well-formed enough\n")
            _response(writer, seed, "https://en.example.org/style.css", extra_when, "200 OK", "text/css",
                      b"body { color: black; }")
            _response(writer, seed, "https://en.example.org/missing", extra_when, "404 Not Found", "text/html",
                      b"<html><body><h1>Not found</h1></body></html>")
            _response(writer, seed, "https://en.example.org/old", extra_when, "301 Moved Permanently", "text/html",
                      b"<html><body>Moved</body></html>")
            _response(writer, seed, "https://en.example.org/blank", extra_when, "200 OK", "text/html",
                      b"<html><head><script>document.write('')</script></head><body></body></html>")
            counts.update(not_html=3, http_status=2, empty_text=1)
    return counts


def write_wet(path: str, pages: list[dict], seed: int) -> dict:
    """One WET.gz: a conversion record per page (text as Common Crawl's WET has it), one with bad UTF-8."""
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for i, page in enumerate(pages):
            text = page["title"] + "\n" + "\n".join(page["paragraphs"])
            payload = text.encode("utf-8")
            if i == 0:
                payload += b"\n\xff\xfe broken bytes"
            headers = {"WARC-Record-ID": _uuid(seed, page["url"], "conversion"),
                       "WARC-Refers-To": _uuid(seed, page["url"], "wet-response"),
                       "WARC-Date": (BASE_DATE + timedelta(days=30, minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "WARC-Identified-Content-Language": {"en": "eng", "de": "deu", "fr": "fra", "es": "spa",
                                                            "it": "ita", "pt": "por", "nl": "nld",
                                                            "pl": "pol"}[page["lang"]],
                       "Content-Type": "text/plain"}
            record = writer.create_warc_record(page["url"], "conversion", payload=io.BytesIO(payload),
                                               warc_content_type="text/plain", warc_headers_dict=headers)
            writer.write_record(record)
    return {"conversion": len(pages)}


def write_sample(out: str, seed: int = 1234, n_pages: int | None = None) -> dict:
    """Write the whole sample corpus under ``out``; returns the files written and the page index."""
    for sub in ("warc", "wet", "jsonl", "parquet", "benchmarks", "quality"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    pages = plan_pages(seed, n_pages)
    files: dict[str, str] = {}
    warc_counts = _write_warcs(out, pages, seed, bundled=n_pages is None, files=files)
    rng = random.Random(seed + 1)  # one stream for WET, JSONL and Parquet, in this order
    n_wet = _write_wet(out, rng, seed, files)
    n_jsonl = _write_jsonl(out, rng, files)
    n_parquet = _write_parquet(out, rng, seed, files)
    _write_benchmark(out, files)
    _write_quality_sets(out, seed, files)
    # A small BPE tokenizer trained on the sample's own sentences, so the `tokens` stage and the mixture
    # builder run without downloading one (users point `tokenizer:` at their production tokenizer).
    corpus = [sentence for lang in sorted(SENTENCES) for sentence in SENTENCES[lang]]
    corpus += [title for lang in sorted(TITLES) for title in TITLES[lang]]
    files["tokenizer"] = train_bpe(corpus * 4, os.path.join(out, "tokenizer"), vocab_size=1000)
    index = {"seed": seed, "warc": warc_counts,
             "pages": [{k: p[k] for k in ("url", "lang", "category") if k in p} for p in pages],
             "wet_records": n_wet, "jsonl_rows": n_jsonl, "parquet_rows": n_parquet}
    with open(os.path.join(out, "index.json"), "w", encoding="utf-8") as handle:
        json.dump(index, handle, indent=1)
    files["index"] = os.path.join(out, "index.json")
    return {"files": files, "index": index}


def _write_warcs(out: str, pages: list[dict], seed: int, bundled: bool, files: dict) -> list:
    """The WARC files (the bundled sample: two, so tasks spread over files) and a Common Crawl paths file."""
    chunks = [pages[i: i + PAGES_PER_WARC] for i in range(0, len(pages), PAGES_PER_WARC)]
    if bundled:
        half = len(pages) // 2
        chunks = [pages[:half], pages[half:]]
    counts, names = [], []
    for k, chunk in enumerate(chunks):
        name = f"CC-SAMPLE-2024-10-{k:05d}.warc.gz"
        counts.append(write_warc(os.path.join(out, "warc", name), chunk, seed, extras=(k == 0)))
        names.append(f"warc/{name}")
    files["warc"] = os.path.join(out, "warc")
    with gzip.GzipFile(os.path.join(out, "warc.paths.gz"), "wb", mtime=0) as manifest:
        manifest.write(("\n".join(names) + "\n").encode())
    files["paths"] = os.path.join(out, "warc.paths.gz")
    return counts


def _write_wet(out: str, rng: random.Random, seed: int, files: dict) -> int:
    wet_pages = [{"url": f"https://{lang}.example.org/wet/{i:05d}", "lang": lang, "title": rng.choice(TITLES[lang]),
                  "paragraphs": _paragraphs(rng, lang, rng.randint(2, 4))}
                 for i, lang in enumerate(LANGS * 5)]
    write_wet(os.path.join(out, "wet", "CC-SAMPLE-2024-18-00000.warc.wet.gz"), wet_pages, seed)
    files["wet"] = os.path.join(out, "wet")
    return len(wet_pages)


def _write_jsonl(out: str, rng: random.Random, files: dict) -> int:
    """Gzipped JSONL in Dolma's layout (text, id, metadata.url)."""
    rows = [{"id": f"dolma-{i:05d}", "text": "\n\n".join(_paragraphs(rng, lang, 3)), "source": "sample-books",
             "added": "2024-04-01", "metadata": {"url": f"https://books.example.org/{lang}/{i}", "lang": lang}}
            for i, lang in enumerate(LANGS * 5)]
    with gzip.GzipFile(os.path.join(out, "jsonl", "books-00000.jsonl.gz"), "wb", mtime=0) as handle:
        for row in rows:
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    files["jsonl"] = os.path.join(out, "jsonl")
    return len(rows)


def _write_parquet(out: str, rng: random.Random, seed: int, files: dict) -> int:
    """Parquet in FineWeb's layout (text, id, url, dump, language_score)."""
    n = len(LANGS) * 5
    table = pa.table({
        "text": ["\n".join(_paragraphs(rng, lang, 2)) for lang in LANGS * 5],
        "id": [f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'fw{seed}-{i}')}>" for i in range(n)],
        "url": [f"https://news.example.com/{lang}/{i}" for i, lang in enumerate(LANGS * 5)],
        "dump": ["CC-MAIN-2024-10"] * n,
        "language_score": [round(0.8 + 0.004 * i, 3) for i in range(n)],
    })
    pq.write_table(table, os.path.join(out, "parquet", "news-00000.parquet"), compression="zstd")
    files["parquet"] = os.path.join(out, "parquet")
    return table.num_rows


def _write_benchmark(out: str, files: dict) -> None:
    with open(os.path.join(out, "benchmarks", "gsm8k_sample.jsonl"), "w", encoding="utf-8") as handle:
        for item in BENCHMARK_ITEMS:
            handle.write(json.dumps(item) + "\n")
    files["benchmark"] = os.path.join(out, "benchmarks", "gsm8k_sample.jsonl")


def _write_quality_sets(out: str, seed: int, files: dict) -> None:
    """A labelled set for the quality classifier (train_quality): good prose against spam and boilerplate."""
    from .webdocs import labelled_docs

    for label, name in ((1, "positives"), (0, "negatives")):
        with open(os.path.join(out, "quality", f"{name}.jsonl"), "w", encoding="utf-8") as handle:
            for d in labelled_docs(2000, seed):
                if d["label"] == label:
                    handle.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
    files["quality"] = os.path.join(out, "quality")
