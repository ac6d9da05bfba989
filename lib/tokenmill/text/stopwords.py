"""Stop words for Gopher's "at least 2 stop words" rule, per language.

English is Gopher's list (Rae et al. 2021: the, be, to, of, and, that, have, with). The others are the same
kind of list written by the team: eight of the most frequent function words of each language, lower case
(matching is case-sensitive, as in Gopher and DataTrove). A config can replace or add lists.
"""

from __future__ import annotations

STOP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("the", "be", "to", "of", "and", "that", "have", "with"),
    "de": ("der", "die", "und", "in", "den", "von", "zu", "das"),
    "fr": ("de", "la", "le", "et", "les", "des", "en", "un"),
    "es": ("de", "la", "que", "el", "en", "y", "los", "del"),
    "it": ("di", "e", "il", "la", "che", "in", "per", "un"),
    "pt": ("de", "a", "o", "que", "e", "do", "da", "em"),
    "nl": ("de", "van", "het", "een", "en", "in", "is", "dat"),
    "pl": ("w", "i", "na", "z", "się", "nie", "do", "to"),
    "sv": ("och", "i", "att", "det", "som", "en", "på", "är"),
    "da": ("og", "i", "at", "det", "en", "til", "er", "som"),
    "no": ("og", "i", "det", "på", "som", "er", "en", "til"),
    "cs": ("a", "se", "v", "na", "je", "že", "o", "s"),
    "ru": ("и", "в", "не", "на", "что", "с", "по", "как"),
    "uk": ("і", "в", "на", "що", "не", "з", "до", "та"),
    "tr": ("ve", "bir", "bu", "da", "de", "için", "ile", "olarak"),
    "id": ("yang", "dan", "di", "ini", "itu", "dengan", "untuk", "dari"),
    "vi": ("của", "và", "là", "có", "được", "trong", "cho", "không"),
    # Per-character languages: words are single characters there, so the lists are single characters.
    "zh": ("的", "是", "在", "了", "和", "有", "不", "这"),
    "ja": ("の", "に", "は", "を", "た", "が", "で", "て"),
}
_ALIASES = {"eng": "en", "deu": "de", "fra": "fr", "spa": "es", "ita": "it", "por": "pt", "nld": "nl",
            "pol": "pl", "swe": "sv", "dan": "da", "nor": "no", "nob": "no", "nb": "no", "ces": "cs",
            "rus": "ru", "ukr": "uk", "tur": "tr", "ind": "id", "vie": "vi", "zho": "zh", "cmn": "zh",
            "jpn": "ja"}

_CACHE: dict[tuple, frozenset[str] | None] = {}


def stop_words_for(lang: str | None, overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()
                   ) -> frozenset[str] | None:
    """The stop words of ``lang`` (no language: English, as the rule sets assume); None when there is no list."""
    key = (lang, overrides)
    hit = _CACHE.get(key, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    code = "en" if lang is None else lang.split("-")[0].split("_")[0].lower()
    code = _ALIASES.get(code, code)
    lists = {**STOP_WORDS, **dict(overrides)}
    words = lists.get(code)
    result = frozenset(words) if words is not None else None
    if len(_CACHE) < 10_000:
        _CACHE[key] = result
    return result
