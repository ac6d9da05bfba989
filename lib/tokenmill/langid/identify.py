"""Identify a batch of documents: normalise, refuse texts without signal, run the backend or the cascade.

The cascade runs the fast backend on every document and the accurate one only where the fast one is unsure:
its score is below `min_score`, the normalised text is shorter than `min_chars`, or its answer is one of
`recheck` (languages it is known to confuse with close neighbours). The accurate answer wins unless it is
`und`, or the accurate backend is restricted to a language set and the fast answer is outside it: lingua
told to choose among eight languages maps Swedish to German and Afrikaans to Dutch, so it may only choose
between languages it knows (a fast `und` has no answer to keep, and takes the accurate one).
"""

from __future__ import annotations

from dataclasses import dataclass

from .backends import BackendSpec, get_backend
from .codes import UND, CodeStyle, to_style
from .text import letters, normalise, paragraphs


@dataclass(frozen=True)
class CascadeSpec:
    min_score: float
    min_chars: int
    recheck: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ParagraphSpec:
    min_chars: int  # paragraphs shorter than this are not identified
    max_paragraphs: int
    min_score: float  # a paragraph counts towards a language only with at least this score
    mixed_share: float  # lang_mixed when other languages hold at least this share of identified characters


@dataclass(frozen=True)
class IdentifySpec:
    """A whole identification setup, shipped to executors with the UDF."""

    primary: BackendSpec
    accurate: BackendSpec | None = None  # set: cascade
    cascade: CascadeSpec | None = None
    prefix_chars: int = 2000
    min_letters: int = 10
    style: CodeStyle = "iso639_1"
    paragraphs: ParagraphSpec | None = None


@dataclass
class Identified:
    lang: list[str | None]
    score: list[float | None]
    backend: list[str | None]  # which backend decided (the cascade's audit trail)
    mixed: list[bool | None]


def identify(texts: list[str | None], spec: IdentifySpec) -> Identified:
    """Language, score and deciding backend per text (None stays None: removed rows are not identified)."""
    n = len(texts)
    out = Identified([None] * n, [None] * n, [None] * n, [None] * n)
    todo: list[int] = []
    clean: list[str] = []
    for i, text in enumerate(texts):
        if text is None:
            continue
        line = normalise(text, spec.prefix_chars)
        if letters(line, spec.min_letters) < spec.min_letters:
            out.lang[i], out.score[i], out.backend[i] = UND, 0.0, None
            continue
        todo.append(i)
        clean.append(line)
    if todo:
        codes, scores = get_backend(spec.primary).predict(clean)
        for i, code, score in zip(todo, codes, scores, strict=True):
            out.lang[i], out.score[i], out.backend[i] = code, score, spec.primary.name
        if spec.accurate is not None and spec.cascade is not None:
            _second_opinion(out, todo, clean, spec)
    if spec.paragraphs is not None:
        _mixed(texts, out, spec)
    # lingua's confidences differ in the last bits from run to run (summation order); six decimals make
    # the output identical across runs, partitionings and local vs. cluster mode.
    out.score = [None if s is None else round(s, 6) for s in out.score]
    if spec.style != "iso639_1":
        out.lang = [None if c is None else to_style(c, spec.style) for c in out.lang]
    return out


def unsure(code: str, score: float, chars: int, cascade: CascadeSpec) -> bool:
    """Whether the cascade asks the accurate backend about a document."""
    return score < cascade.min_score or chars < cascade.min_chars or code in cascade.recheck


def _second_opinion(out: Identified, todo: list[int], clean: list[str], spec: IdentifySpec) -> None:
    assert spec.accurate is not None and spec.cascade is not None
    ask = [(i, line) for i, line in zip(todo, clean, strict=True)
           if unsure(out.lang[i] or UND, out.score[i] or 0.0, len(line), spec.cascade)]
    if not ask:
        return
    known = frozenset(spec.accurate.languages)
    if known:
        ask = [(i, line) for i, line in ask if out.lang[i] in known or out.lang[i] in (UND, None)]
        if not ask:
            return
    codes, scores = get_backend(spec.accurate).predict([line for _, line in ask])
    for (i, _), code, score in zip(ask, codes, scores, strict=True):
        if code != UND:
            out.lang[i], out.score[i], out.backend[i] = code, score, spec.accurate.name


def _mixed(texts: list[str | None], out: Identified, spec: IdentifySpec) -> None:
    """`lang_mixed`: other languages hold at least `mixed_share` of the characters of identified paragraphs."""
    para = spec.paragraphs
    assert para is not None
    backend = get_backend(spec.primary)
    for i, text in enumerate(texts):
        if text is None:
            continue
        parts = [normalise(p, spec.prefix_chars) for p in paragraphs(text, para.min_chars, para.max_paragraphs)]
        parts = [p for p in parts if letters(p, spec.min_letters) >= spec.min_letters]
        if out.lang[i] == UND or len(parts) < 2:
            out.mixed[i] = False
            continue
        codes, scores = backend.predict(parts)
        chars: dict[str, int] = {}
        for part, code, score in zip(parts, codes, scores, strict=True):
            if code != UND and score >= para.min_score:
                chars[code] = chars.get(code, 0) + len(part)
        total = sum(chars.values())
        other = total - chars.get(out.lang[i] or UND, 0)
        out.mixed[i] = bool(total) and other / total >= para.mixed_share
