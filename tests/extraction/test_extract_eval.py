"""The `resiliparse_clean` extractor (resiliparse + boilerplate passes) and the `extract_eval` job: token
precision / recall / F1 against labelled main texts, on news-shaped pages written to a WARC with warcio."""

from __future__ import annotations

import io
import json

from tokenmill.extraction.evaluate import evaluate_extraction, format_eval, token_prf
from tokenmill.io.html import extract_text

P1 = ("The city council voted on Tuesday to extend the tram line to the northern districts, a project that "
      "has been discussed for more than a decade and will cost about 240 million euros.")
P2 = ("Construction is expected to start next spring. Residents of the affected streets will be invited to "
      "information evenings in March, the council said in a statement.")
P3 = ("Opponents argue that buses would serve the same neighbourhoods for a fraction of the price, and they "
      "have asked the regional court to review the decision before any contracts are signed.")


def _page(title: str, paras: list[str], comments: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paras)
    notes = "".join(f'<li class="comment"><p>{c}</p></li>' for c in comments)
    return (f"<html><head><title>{title}</title></head><body>"
            f'<nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/sport">Sport</a></nav>'
            f'<main><article><h1>{title}</h1><p class="byline">By Anna Berg, 12 March 2024</p>{body}'
            f'<div class="share-bar">Share this on Facebook Twitter Email</div></article>'
            f'<section id="comments"><h2>3 Comments</h2><ol>{notes}</ol></section></main>'
            f"<footer>© 2024 Example News. All rights reserved. Privacy policy</footer></body></html>")


PAGES = {
    "https://news.example/tram": (_page("Council extends tram line", [P1, P2, P3],
                                        ["Finally! I have waited for this tram for years, thanks to everyone.",
                                         "What a waste of money, the buses are half empty already."]), [P1, P2, P3]),
    "https://news.example/short": (_page("Short notice", [P2], []), [P2]),
}


def _warc(path) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, (html, _) in PAGES.items():
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(html.encode()),
                                                          http_headers=http))


def test_clean_extractor_keeps_the_article_and_drops_the_furniture():
    html, paras = PAGES["https://news.example/tram"]
    assert extract_text(html, "resiliparse_clean") == "\n".join(paras)
    plain = extract_text(html, "resiliparse")
    assert "waited for this tram" in plain  # the comment thread stays in resiliparse's main content


def test_token_prf():
    assert token_prf("a b b c", "a b c d") == (0.75, 0.75, 0.75)
    assert token_prf("", "a") == (0.0, 0.0, 0.0) and token_prf("a", None) == (0.0, 0.0, 0.0)


def test_extract_eval_scores_each_extractor(spark, tmp_path):
    warc = tmp_path / "pages.warc.gz"
    _warc(warc)
    labels = tmp_path / "labels.jsonl"
    rows = [{"url": url, "articleBody": "\n\n".join(paras)} for url, (_, paras) in PAGES.items()]
    rows.append({"url": "https://news.example/missing", "articleBody": P1})  # labelled, not in the WARC: scores 0
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = evaluate_extraction(spark, str(warc), str(labels), ["resiliparse", "resiliparse_clean"],
                                 str(tmp_path / "work"))
    clean, plain = result["extractors"]["resiliparse_clean"], result["extractors"]["resiliparse"]
    assert result["labels"] == 3
    assert clean == {"precision": round(2 / 3, 4), "recall": round(2 / 3, 4), "f1": round(2 / 3, 4),
                     "empty_share": round(1 / 3, 4), "labelled_pages_not_in_warc": 1}
    assert plain["recall"] == clean["recall"] and plain["precision"] < clean["precision"]
    assert "resiliparse_clean" in format_eval(result)
