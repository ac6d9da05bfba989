"""A generated crawl for the whole-pipeline bench, closer to Common Crawl's mix than the bundled sample:
about 75% English web documents of every kind `tokenmill.sample.webdocs` makes (articles, lists, forums,
shops, spam, repeated blocks, code; 200-5,000 words, log-normal around 586), 15% pages in seven other
languages, 5% exact copies and 5% near copies (one sentence added) of earlier pages, and a few forum
posts quoting GSM8K test questions; 1,000 pages per WARC.gz file (request + response records), plus the
GSM8K sample and the sample's BPE tokenizer for the decontamination and token stages."""

from __future__ import annotations

import os
import random
import shutil

from tokenmill.sample.generate import LANGS, TITLES, _paragraphs, write_sample, write_warc
from tokenmill.sample.texts import BENCHMARK_ITEMS, SENTENCES
from tokenmill.sample.webdocs import generate_docs

PAGES_PER_FILE = 1000


def plan_crawl(n: int, seed: int = 5) -> list[dict]:
    """``n`` page dicts (url, lang, category, title, paragraphs) for `write_warc`, fixed by ``seed``."""
    rng = random.Random(seed)
    n_other, n_exact, n_near = n * 15 // 100, n * 5 // 100, n * 5 // 100
    n_quote = min(len(BENCHMARK_ITEMS), max(1, n // 10_000))
    n_en = n - n_other - n_exact - n_near - n_quote
    pages = []
    for doc in generate_docs(n_en, seed=seed, min_words=30):
        lines = [line for line in doc["text"].split("\n") if line.strip()]
        pages.append({"url": doc["url"], "lang": "en", "category": doc["kind"], "title": lines[0][:80],
                      "paragraphs": lines[1:] or lines})
    others = [lang for lang in LANGS if lang != "en"]
    for i in range(n_other):
        lang = others[i % len(others)]
        pages.append({"url": f"https://{lang}.example.org/article/{i:07d}", "lang": lang, "category": "other_lang",
                      "title": rng.choice(TITLES[lang]), "paragraphs": _paragraphs(rng, lang, rng.randint(4, 12))})
    originals = len(pages)
    for k in range(n_exact):
        src = pages[rng.randrange(originals)]
        pages.append({**src, "url": f"https://mirror{k % 7}.example.net/copy/{k:07d}", "category": "exact_dup"})
    for k in range(n_near):
        src = pages[rng.randrange(originals)]
        paragraphs = list(src["paragraphs"]) + [rng.choice(SENTENCES[src["lang"]])]
        pages.append({**src, "url": f"https://aggregator.example.com/story/{k:07d}", "category": "near_dup",
                      "paragraphs": paragraphs})
    for k, item in enumerate(BENCHMARK_ITEMS[:n_quote]):
        pages.append({"url": f"https://forum.example.edu/thread/{k:05d}", "lang": "en", "category": "benchmark_quote",
                      "title": "Homework help", "paragraphs": ["Can anyone help me with my homework? The question is:",
                                                               item["question"], "I got a different number."]})
    rng.shuffle(pages)
    return pages


def write_crawl(out: str, n: int, seed: int = 5) -> dict:
    """``out``/warc/*.warc.gz, ``out``/benchmarks/gsm8k_sample.jsonl and ``out``/tokenizer."""
    aux = os.path.join(out, "aux")
    write_sample(aux)  # the bundled sample: its GSM8K items and tokenizer
    for sub in ("benchmarks", "tokenizer"):
        shutil.copytree(os.path.join(aux, sub), os.path.join(out, sub), dirs_exist_ok=True)
    shutil.rmtree(aux)
    os.makedirs(os.path.join(out, "warc"), exist_ok=True)
    pages = plan_crawl(n, seed)
    for f, lo in enumerate(range(0, len(pages), PAGES_PER_FILE)):
        write_warc(os.path.join(out, "warc", f"CC-BENCH-{f:05d}.warc.gz"), pages[lo:lo + PAGES_PER_FILE], seed, False)
    kinds: dict[str, int] = {}
    for p in pages:
        kinds[p["category"]] = kinds.get(p["category"], 0) + 1
    return {"pages": len(pages), "categories": kinds}
