"""Regenerate lib/tokenmill/text/en_exceptions.json: the English tokenizer exceptions of spaCy (MIT
licence, Explosion AI), as data for the reimplemented tokenizer in lib/tokenmill/text/words.py.

`specials`: a whitespace-free string -> the tokens spaCy gives it (contractions, abbreviations,
emoticons...). `affix_specials`: for specials that contain prefix, suffix or infix characters, the
tokens the affix rules alone would cut them into; spaCy merges such runs of tokens back into the special
after splitting ("):" after "above"), and so do we. Run with spaCy installed (a dev dependency):
    .venv/bin/python tools/gen_en_exceptions.py
"""

from __future__ import annotations

import json
from pathlib import Path

import spacy
from spacy.tokenizer import Tokenizer

OUT = Path(__file__).resolve().parents[1] / "lib" / "tokenmill" / "text" / "en_exceptions.json"


def main() -> None:
    nlp = spacy.blank("en")
    tok = nlp.tokenizer
    bare = Tokenizer(nlp.vocab, rules={}, prefix_search=tok.prefix_search, suffix_search=tok.suffix_search,
                     infix_finditer=tok.infix_finditer, token_match=tok.token_match, url_match=tok.url_match)
    specials, affix = {}, {}
    for key, pieces in sorted(tok.rules.items()):
        if not key.strip() or any(ch.isspace() for ch in key):
            continue
        orths = [p[65] if 65 in p else p["ORTH"] for p in pieces]  # 65: the ORTH attribute id
        specials[key] = orths
        split = [t.text for t in bare(key)]
        if len(split) > 1:
            affix[key] = split
    data = {"source": f"spaCy {spacy.__version__} English tokenizer exceptions (MIT licence)",
            "specials": specials, "affix_specials": affix}
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(specials)} specials, {len(affix)} with affixes -> {OUT}")


if __name__ == "__main__":
    main()
