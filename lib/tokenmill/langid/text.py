"""What a language identifier sees: a normalised prefix, URLs and e-mail addresses removed, one line.

fastText predicts one line at a time and reads URLs as words; CLD2 and lingua are not helped by them
either. Identification on a prefix keeps the cost per document flat (long documents rarely switch
language; per-paragraph identification flags the ones that do).
"""

from __future__ import annotations

import re

import regex

_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+|[\w.+-]+@[\w-]+\.[\w.-]+", re.IGNORECASE)
# Letters and the combining marks of abugidas (Devanagari, Tamil... vowel signs are marks, not letters).
_NON_LETTER = regex.compile(r"[^\p{L}\p{M}]+")
# A Han, kana or Hangul character carries about a word's information: it counts as this many letters.
_IDEOGRAPHIC = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
IDEOGRAPH_WEIGHT = 5  # about a Latin word (five letters)
# Control and unpaired-surrogate characters make CLD2 reject the whole text as invalid UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_PARAGRAPH = re.compile(r"\n\s*\n|\n")


def normalise(text: str | None, prefix_chars: int) -> str:
    """The first ``prefix_chars`` characters of the cleaned text, on one line."""
    if not text:
        return ""
    window = prefix_chars + 512 if prefix_chars else len(text)
    while True:
        head = text[:window]
        if "://" in head or "@" in head or "www." in head or "WWW." in head:  # the regex only where it can match
            head = _URL.sub(" ", head)
        head = _CONTROL.sub(" ", head)
        head = " ".join(head.split())  # every run of (Unicode) whitespace -> one space, ends stripped
        if not prefix_chars:
            return head
        if len(head) >= prefix_chars or window >= len(text):
            return head[:prefix_chars]
        window *= 4  # much was removed (URLs, whitespace runs): look further


def letters(text: str, enough: int | None = None) -> int:
    """How much language ``text`` holds, in letters (digits, punctuation, symbols and spaces carry none; a
    combining mark counts as a letter, a Han, kana or Hangul character as IDEOGRAPH_WEIGHT); with ``enough``,
    counting may stop early once that many are found (the answer is then at least ``enough``)."""
    if enough is not None and len(text) > 256:
        found = _weighted(text[:256])
        if found >= enough:
            return found
    return _weighted(text)


def _weighted(text: str) -> int:
    kept = _NON_LETTER.sub("", text)
    if kept.isascii():
        return len(kept)
    return len(kept) + (IDEOGRAPH_WEIGHT - 1) * len(_IDEOGRAPHIC.findall(kept))


def paragraphs(text: str | None, min_chars: int, max_paragraphs: int) -> list[str]:
    """The document's paragraphs (lines) of at least ``min_chars`` characters, the first ``max_paragraphs``."""
    if not text:
        return []
    out = []
    for part in _PARAGRAPH.split(text):
        part = part.strip()
        if len(part) >= min_chars:
            out.append(part)
            if len(out) >= max_paragraphs:
                break
    return out
