"""The canonical instruction-data formats: one row layout per training method, as Spark and Arrow schemas.

- `sft`:  `messages` — a list of {role, content} (system, user, assistant, tool), the recommended SFT form.
- `dpo`:  `prompt`, `chosen`, `rejected` — each a message list (TRL's conversational preference form; a
          string prompt is one user turn, a string answer one assistant turn).
- `grpo`: `question`, `answer` (verifiable: a number, an expression or a short string), `solution`.

Message lists are Arrow `list<struct<role: string, content: string>>` end to end, never JSON strings. Every
row also has the canonical `id`, `source`, `url`, `meta`, `removed_by` and a `text` (all its content, so
that langid, dedup, decontamination and quality stages work on it unchanged; `instruct_text` re-aims it).
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pyspark.sql import types as T

from ..schema import (
    ANSWER,
    ARROW_DOCUMENT_SCHEMA,
    CHOSEN,
    DOCUMENT_SCHEMA,
    ID,
    INSTRUCT_COLUMNS,
    MESSAGES,
    META,
    PROMPT,
    QUESTION,
    REJECTED,
    REMOVED_BY,
    SOLUTION,
    SOURCE,
    TEXT,
    URL,
)

Use = Literal["sft", "dpo", "grpo"]
USES = ("sft", "dpo", "grpo")

ROLES = ("system", "user", "assistant", "tool")
# Role names of the layouts users have, onto ours (ShareGPT human/gpt, OASST prompter, Gemini model, ...).
ROLE_ALIASES = {
    "system": "system", "user": "user", "assistant": "assistant", "tool": "tool",
    "human": "user", "prompter": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant",
    "chatgpt": "assistant", "bing": "assistant", "function": "tool", "observation": "tool", "ipython": "tool",
}

USE_COLUMNS: dict[str, tuple[str, ...]] = INSTRUCT_COLUMNS

MESSAGE = T.StructType([T.StructField("role", T.StringType(), True), T.StructField("content", T.StringType(), True)])
MESSAGE_LIST = T.ArrayType(MESSAGE, True)
ARROW_MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
ARROW_MESSAGE_LIST = pa.list_(ARROW_MESSAGE)

_BASE = list(DOCUMENT_SCHEMA.fields)  # id, text, source, url, meta, removed_by: as for documents
_USE_FIELDS = {
    "sft": [T.StructField(MESSAGES, MESSAGE_LIST, True)],
    "dpo": [T.StructField(c, MESSAGE_LIST, True) for c in (PROMPT, CHOSEN, REJECTED)],
    "grpo": [T.StructField(c, T.StringType(), True) for c in (QUESTION, ANSWER, SOLUTION)],
}


def spark_schema(use: str) -> T.StructType:
    """The Spark schema of canonical rows for ``use``."""
    return T.StructType(_BASE + _USE_FIELDS[use])


def arrow_schema(use: str) -> pa.Schema:
    """The Arrow schema of canonical rows for ``use`` (what the readers' batches carry)."""
    base = list(ARROW_DOCUMENT_SCHEMA)
    extra = {"sft": [pa.field(MESSAGES, ARROW_MESSAGE_LIST)],
             "dpo": [pa.field(c, ARROW_MESSAGE_LIST) for c in (PROMPT, CHOSEN, REJECTED)],
             "grpo": [pa.field(c, pa.string()) for c in (QUESTION, ANSWER, SOLUTION)]}[use]
    return pa.schema(base + extra)


def columns_for(use: str) -> tuple[str, ...]:
    """The columns a reader of ``use`` rows provides (the planner checks stages against them)."""
    return (ID, TEXT, SOURCE, URL, META, REMOVED_BY, *USE_COLUMNS[use])


def use_of(columns: list[str]) -> str | None:
    """Which canonical format a frame's columns are (None: text documents)."""
    for use in ("dpo", "grpo", "sft"):
        if all(c in columns for c in USE_COLUMNS[use]):
            return use
    return None
