"""The Arrow form of the SFT checks and of ChatML answers exactly as the Spark expressions do, row by row,
on conversations with every problem and the edge cases where Spark's semantics are easy to miss (null
roles, Java's \\s, blanks Spark trims, letters outside ASCII)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql import functions as F

from tokenmill.instruct.arrow_checks import SFT_CHECKS, chatml, first_problem, sft_problems
from tokenmill.instruct.checks import checks
from tokenmill.instruct.checks import first_problem as spark_first_problem
from tokenmill.instruct.formats import ARROW_MESSAGE_LIST
from tokenmill.instruct.stage import _chatml

LONG = " ".join(["word"] * 24)


def _m(*turns):
    return [{"role": r, "content": c} for r, c in turns]


ROWS = [
    (_m(("user", "Hi"), ("assistant", "Hello.")), None),
    (_m(("assistant", "Hello!"), ("user", "Hi")), None),
    (_m(("system", "s"), ("assistant", "first"), ("user", "q")), None),
    (_m((None, "who"), ("user", "q")), None),  # a null role: no_assistant is unknown, so not raised
    (_m((None, "who"), ("assistant", "a")), None),
    (_m(("user", "a"), ("user", "b"), ("assistant", "c")), None),
    (_m(("user", "a"), ("tool", "b"), ("tool", "c"), ("assistant", "d")), None),
    (_m(("user", "a"), ("system", "late"), ("assistant", "c")), None),
    (_m(("user", "a"), ("narrator", "b"), ("assistant", "c")), None),
    (_m(("user", ""), ("assistant", "c")), None),
    (_m(("user", "\u00a0 \t\u3000"), ("assistant", "c")), None),
    (_m(("user", None), ("assistant", "c")), None),
    (_m(("user", "q"), ("assistant", LONG)), None),
    (_m(("user", "q"), ("assistant", LONG + ",\u00a0 ")), None),
    (_m(("user", "q"), ("assistant", "\x0b".join(["w"] * 21) + " end")), None),  # Java's \s has \v
    (_m(("user", "q"), ("assistant", "\u00a0".join(["w"] * 25))), None),  # nbsp is not \s: one word
    (_m(("user", "q"), ("assistant", LONG + ".")), None),
    (_m(("user", "q"), ("assistant", " ".join(["w"] * 18) + " naïve")), None),
    (_m(("user", "q"), ("assistant", LONG + " 日本語")), None),
    (_m(("user", "q"), ("assistant", LONG + " (–")), None),
    (_m(("user", "q"), ("assistant", LONG), ("user", "more"), ("assistant", "ok.")), None),
    (_m(("user", "q"), ("assistant", None)), None),
    (_m(("user", "CafÃ©"), ("assistant", "c")), None),
    (_m(("user", "q"), ("assistant", "donâ€™t")), None),
    (_m(("user", "Â\u00a0x"), ("assistant", "c")), None),
    (_m(("user", "bad \ufffd"), ("assistant", "c")), None),
    (_m(("user", "Ãx is fine, Â too"), ("assistant", "c")), None),
    ([], None),
    (None, None),
    (None, {"finish_reason": "length"}),
    (_m(("user", "q"), ("assistant", "fine.")), {"finish_reason": "length", "model": "m"}),
    (_m(("user", "q"), ("assistant", "fine.")), {"finish_reason": "stop"}),
    (_m(("user", "q"),), {}),
    (_m(("user", "\u2014 a dash first"), ("assistant", "\u3000\u200b")), None),  # blank-looking lead bytes
    (_m(("user", "\u00a0x"), ("assistant", "ok \ufeff.")), None),
]


def test_arrow_checks_and_chatml_equal_the_spark_expressions(spark):
    df = spark.createDataFrame([(i, m, meta) for i, (m, meta) in enumerate(ROWS)],
                               "i int, messages array<struct<role:string,content:string>>, meta map<string,string>")
    found = checks("sft")
    assert set(found) == set(SFT_CHECKS)
    names = ["truncated_response", *sorted(set(SFT_CHECKS) - {"truncated_response"})]
    cols = [F.coalesce(found[n], F.lit(False)).alias(n) for n in SFT_CHECKS]
    cols += [spark_first_problem("sft", True, names).alias("first"), _chatml(F.col("messages"), False).alias("t"),
             _chatml(F.col("messages"), True).alias("g")]
    want = [r.asDict() for r in df.select("i", *cols).orderBy("i").collect()]

    messages = pa.array([m for m, _ in ROWS], ARROW_MESSAGE_LIST)
    meta = pa.array([None if d is None else list(d.items()) for _, d in ROWS], pa.map_(pa.string(), pa.string()))
    for start, stop in ((0, len(ROWS)), (3, 17)):  # a whole batch, and a slice (offsets not at zero)
        got = sft_problems(messages.slice(start, stop - start), meta.slice(start, stop - start))
        firsts = first_problem(got, names, np.ones(stop - start, dtype=bool)).to_pylist()
        texts = chatml(messages.slice(start, stop - start)).to_pylist()
        gen = chatml(messages.slice(start, stop - start), True).to_pylist()
        for k, i in enumerate(range(start, stop)):
            row = {n: bool(got[n][k]) for n in SFT_CHECKS}
            assert row == {n: want[i][n] for n in SFT_CHECKS}, (i, ROWS[i])
            assert (firsts[k], texts[k], gen[k]) == (want[i]["first"], want[i]["t"], want[i]["g"]), i
    assert [r["first"] for r in want] == [
        None, "assistant_first", "assistant_first", "unknown_role", "assistant_first", "same_role_twice", None,
        "system_not_first", "unknown_role", "empty_turn", "empty_turn", "empty_turn", "truncated_response",
        "truncated_response", "truncated_response", None, None, None, "truncated_response", "truncated_response",
        None, "empty_turn", "mojibake", "mojibake", "mojibake", "mojibake", None, "no_assistant", None,
        "truncated_response", "truncated_response", None, "no_assistant", "empty_turn", None]


def test_check_names_are_the_checks_keys_in_order(spark):
    from tokenmill.instruct.checks import NAMES

    for use in ("sft", "dpo", "grpo"):
        assert NAMES[use] == tuple(checks(use))
    assert tuple(SFT_CHECKS) == NAMES["sft"]
