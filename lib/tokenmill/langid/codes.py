"""Language codes: every backend's labels to one code, ISO 639-1 where it exists, else ISO 639-3.

fastText models label `__label__en` (lid.176) or `__label__eng_Latn` (GlotLID, OpenLID); CLD2 uses its own
codes (`iw`, `zh-Hant`); lingua gives ISO codes. The tables come from pycountry (ISO 639-3 with its 639-1
equivalents).
"""

from __future__ import annotations

from functools import cache
from typing import Literal

UND = "und"  # ISO 639-2 "undetermined": too little signal to say

CodeStyle = Literal["iso639_1", "iso639_3"]

# Individual languages that FLORES-200 / OpenLID / GlotLID label with their own 639-3 code although the
# 639-1 code names their macrolanguage (ISO 639-3 macrolanguage mappings, SIL): the standard variety.
MACRO_MEMBERS = {
    "arb": "ar", "cmn": "zh", "zsm": "ms", "pes": "fa", "ekk": "et", "lvs": "lv", "swh": "sw", "azj": "az",
    "uzn": "uz", "plt": "mg", "gaz": "om", "khk": "mn", "npi": "ne", "ory": "or", "pbt": "ps", "ydd": "yi",
    "als": "sq", "quy": "qu", "ayr": "ay", "kmr": "ku", "knc": "kr", "fuv": "ff", "lug": "lg",
}

# Retired or non-standard two-letter codes some detectors still emit (CLD2: iw, jw, in; Norwegian Bokmål
# is reported as `no`, the code lid.176 and most crawls use, so nb and no agree across backends).
DEFAULT_ALIASES = {"iw": "he", "jw": "jv", "in": "id", "ji": "yi", "mo": "ro", "nb": "no"}


@cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    import pycountry

    three_to_one: dict[str, str] = {}
    one_to_three: dict[str, str] = {}
    for lang in pycountry.languages:
        two = getattr(lang, "alpha_2", None)
        if two:
            three_to_one[lang.alpha_3] = two
            one_to_three[two] = lang.alpha_3
    for member, two in MACRO_MEMBERS.items():
        three_to_one.setdefault(member, two)
    return three_to_one, one_to_three


def base_code(label: str) -> str:
    """A backend label -> a lower-case code without prefix or script: `__label__eng_Latn` -> `eng`."""
    code = label.removeprefix("__label__").strip().lower().replace("-", "_")
    return code.split("_", 1)[0] if code else UND


def to_iso639_1(code: str, aliases: dict[str, str] | None = None) -> str:
    """ISO 639-1 where the language has one, else the (lower-case) 639-3 code; aliases apply last."""
    code = base_code(code)
    if code in ("", "un", "unk", "xx", "zxx", UND, "mis", "mul"):
        return UND
    if len(code) == 3:
        code = _tables()[0].get(code, code)
    table = DEFAULT_ALIASES if aliases is None else aliases
    return table.get(code, code)


def to_style(code: str, style: CodeStyle) -> str:
    """A canonical (639-1-first) code in the configured style."""
    if style == "iso639_1" or code == UND or len(code) != 2:
        return code
    if code == "no":
        return "nor"
    return _tables()[1].get(code, code)


def canonical(code: str, aliases: dict[str, str] | None = None) -> str:
    """A code a user wrote in a config (either style) -> the canonical 639-1-first form."""
    return to_iso639_1(code, aliases)
