"""What is wrong with an instruction row, as Spark native expressions over the message lists (no Python per
row): each check is a named condition, and `problems` gives every row the list of the checks it fails.

Used by validation (counts and example ids per problem) and by the `instruct_filter` stage (remove rows
with chosen problems), so both mean the same thing by each name.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

from ..schema import META
from .formats import ANSWER, CHOSEN, MESSAGES, PROMPT, QUESTION, REJECTED, ROLES, SOLUTION

# Typical UTF-8 text decoded as Latin-1/cp1252 once too often ("CafÃ©", "donâ€™t", "Â "), or U+FFFD.
MOJIBAKE = "(Ã[\u0080-\u00bf]|â€|Â[\u00a0-\u00bf]|\ufffd)"
BLANK_CHARS = " \t\n\r\f\v\u00a0\u2002\u2003\u2009\u200b\u3000"
# A long reply that stops on a letter, comma or opening bracket stopped mid-sentence (a generation cut at
# max_tokens); short replies ("Paris") and replies ending in digits, punctuation or code fences do not count.
TRUNCATED_END = r"(?U)[\p{L},;:(\[{–-]"  # the last character
TRUNCATED_MIN_WORDS = 20
# Verifiable answers: a number (1,450  -3.5  3/4  12%), or a short expression with no run of three plain
# words once LaTeX commands are set aside (\frac{1}{2}, x^2+1, (1, 2)); otherwise a short string.
NUMBER = r"^[-+]?\$?(?=[\d.,/]*\d)(\d{1,3}(,\d{3})+|\d*)(\.\d+)?(/\d+)?%?$"
WORDS3 = r"[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}"
EXPRESSION_MAX_CHARS = 80
SHORT_MAX_WORDS = 5

DESCRIPTIONS = {
    "empty_turn": "a turn (or answer) that is empty or whitespace only",
    "assistant_first": "the first non-system turn is the assistant's",
    "same_role_twice": "two turns of the same role in a row (tool turns excepted)",
    "no_assistant": "no assistant turn: nothing to train on",
    "unknown_role": "a role other than system, user, assistant, tool",
    "system_not_first": "a system turn after the first turn",
    "truncated_response": "the final response stops mid-sentence (or finish_reason is length)",
    "mojibake": "text decoded with the wrong encoding (CafÃ©, â€™) or U+FFFD",
    "chosen_equals_rejected": "chosen and rejected are the same",
    "prompt_not_shared": "chosen and rejected do not continue the same prompt",
    "no_prompt": "an empty prompt",
    "answer_not_verifiable": "the answer is not a number or an expression (not a short string, for non-math)",
}
# Problems that leave nothing to train on: a row with one is unusable, whatever the cleaning.
# The checks of each use, in `checks`' order (its keys, without building the expressions).
NAMES = {
    "sft": ("empty_turn", "assistant_first", "same_role_twice", "no_assistant", "unknown_role", "system_not_first",
            "truncated_response", "mojibake"),
    "dpo": ("empty_turn", "chosen_equals_rejected", "prompt_not_shared", "no_prompt", "unknown_role",
            "truncated_response", "mojibake"),
    "grpo": ("empty_turn", "answer_not_verifiable", "mojibake"),
}
BLOCKING = {"no_assistant", "chosen_equals_rejected", "answer_not_verifiable", "prompt_not_shared"}


# Some character that is not blank: a regex search that stops at the first such character, so a normal
# turn costs one step (trimming a custom character set walks the whole string).
_BLANK = "[" + "".join(f"\\u{ord(c):04x}" for c in BLANK_CHARS) + "]"
_NOT_BLANK = "[^" + _BLANK[1:]


def _blank(c: Column) -> Column:
    return c.isNull() | ~c.rlike(_NOT_BLANK)


def _has_mojibake(c: Column) -> Column:
    # Plain substring tests first (no regex over clean text), the regex only where a lead character occurs.
    lead = c.contains("Ã") | c.contains("â€") | c.contains("Â") | c.contains("\ufffd")
    return F.when(lead, c.rlike(MOJIBAKE)).otherwise(F.lit(False))


def _any_blank(msgs: Column) -> Column:
    return F.exists(msgs, lambda x: _blank(x.content))


def _mojibake(msgs: Column) -> Column:
    return F.exists(msgs, lambda x: _has_mojibake(x.content))


def _let(value: Column, body: Callable[[Column], Column]) -> Column:
    """``body(value)`` with ``value`` computed once: Catalyst copies a column into every place it is used,
    and does not share the copies inside conditional branches; a lambda's argument is evaluated once."""
    return F.get(F.transform(F.array(value), body), 0)


def _pairs_exist(msgs: Column, pred: Callable[[Column, Column], Column]) -> Column:
    """True when some turn i >= 1 and its predecessor satisfy ``pred(turn, previous)``."""
    n = F.size(msgs)
    return (n > 1) & F.exists(F.sequence(F.lit(1), n - 1), lambda i: pred(F.get(msgs, i), F.get(msgs, i - 1)))


def _truncated(msgs: Column) -> Column:
    replies = F.filter(msgs, lambda x: x.role == "assistant")

    def stopped(text: Column) -> Column:
        # The last character after trimming; a reply that does not end in a blank needs no trim for it.
        ends_blank = F.substring(text, -1, 1).rlike(_BLANK)
        tail = F.when(ends_blank, F.btrim(text, F.lit(BLANK_CHARS))).otherwise(text)
        ends_open = F.substring(tail, -1, 1).rlike(TRUNCATED_END)
        words = F.size(F.split(F.btrim(text, F.lit(BLANK_CHARS)), r"\s+"))
        return F.when(ends_open, words >= TRUNCATED_MIN_WORDS).otherwise(F.lit(False))

    cut = _let(replies, lambda r: F.when(F.size(r) > 0, _let(F.element_at(r, -1).content, stopped)))
    return F.coalesce(cut, F.lit(False)) | F.coalesce(F.col(META).getItem("finish_reason") == "length", F.lit(False))


def _verifiable(answer: Column, math: bool) -> Column:
    a = F.trim(answer)
    if not math:
        return a.isNotNull() & (F.length(a) > 0) & (F.size(F.split(a, r"\s+")) <= SHORT_MAX_WORDS)
    bare = F.regexp_replace(a, r"\\[A-Za-z]+", " ")
    expression = (F.length(a) <= EXPRESSION_MAX_CHARS) & ~bare.rlike(WORDS3) & (F.length(a) > 0)
    return a.isNotNull() & (a.rlike(NUMBER) | expression)


def checks(use: str, math: bool = True) -> dict[str, Column]:
    """Problem name -> condition, for rows of ``use`` (``math``: GRPO answers must be numbers/expressions)."""
    if use == "sft":
        m = F.col(MESSAGES)
        first = F.get(F.filter(m, lambda x: x.role != "system"), 0)
        return {
            "empty_turn": _any_blank(m),
            "assistant_first": F.coalesce(first.role == "assistant", F.lit(False)),
            "same_role_twice": _pairs_exist(m, lambda a, b: (a.role == b.role) & (a.role != "tool")),
            "no_assistant": ~F.exists(m, lambda x: x.role == "assistant"),
            "unknown_role": F.exists(m, lambda x: x.role.isNull() | ~x.role.isin(*ROLES)),
            "system_not_first": _pairs_exist(m, lambda a, b: a.role == "system"),
            "truncated_response": _truncated(m),
            "mojibake": _mojibake(m),
        }
    if use == "dpo":
        p, c, r = F.col(PROMPT), F.col(CHOSEN), F.col(REJECTED)
        everything = F.concat(p, c, r)
        not_shared = F.coalesce(F.col(META).getItem("prompt_not_shared") == "true", F.lit(False))
        return {
            "empty_turn": _any_blank(everything) | (F.size(c) == 0) | (F.size(r) == 0),
            "chosen_equals_rejected": c == r,
            "prompt_not_shared": not_shared,
            "no_prompt": (F.size(p) == 0) & ~not_shared,
            "unknown_role": F.exists(everything, lambda x: x.role.isNull() | ~x.role.isin(*ROLES)),
            "truncated_response": _truncated(c),
            "mojibake": _mojibake(everything),
        }
    q, a, s = F.col(QUESTION), F.col(ANSWER), F.col(SOLUTION)
    return {
        "empty_turn": _blank(q) | (_blank(a) & _blank(s)),
        "answer_not_verifiable": ~_verifiable(a, math),
        "mojibake": F.coalesce(_has_mojibake(q), F.lit(False)) | F.coalesce(_has_mojibake(s), F.lit(False)),
    }


def problems(use: str, math: bool = True, only: list[str] | None = None) -> Column:
    """The names of the checks each row fails (an empty array for a clean row)."""
    found = checks(use, math)
    names = only if only is not None else list(found)
    return F.filter(F.array(*[F.when(F.coalesce(found[n], F.lit(False)), F.lit(n)) for n in names]),
                    lambda x: x.isNotNull())


def first_problem(use: str, math: bool = True, only: list[str] | None = None) -> Column:
    """The name of the first check (in ``only``'s order) a row fails, or null. The first element of
    `problems`: measured, a CASE over the checks costs 3x more (Spark evaluates the higher-order functions
    in its branches without code generation)."""
    return F.get(problems(use, math, only), 0)


def numeric_answer(answer: Column) -> Column:
    """True for answers that are plain numbers (to tell a math dataset from others)."""
    return F.coalesce(F.trim(answer).rlike(NUMBER), F.lit(False))
