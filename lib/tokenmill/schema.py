"""The canonical document schema, every column name tokenmill writes, and stable document ids.

The one place column names are defined: readers produce the canonical columns; each stage adds the columns
listed under its name (and declares them in its `register(..., adds=...)`)."""

from __future__ import annotations

import hashlib

import pyarrow as pa
from pyspark.sql import types as T

# The canonical columns every reader produces.
ID = "id"
TEXT = "text"
SOURCE = "source"
URL = "url"
META = "meta"
# Set by a filter stage on the rows it removes ("<stage>:<reason>"); null on kept rows.
# The writer partitions by it, so kept files never carry it.
REMOVED_BY = "removed_by"

# langid
LANG = "lang"
LANG_SCORE = "lang_score"
LANG_BACKEND = "lang_backend"
LANG_MIXED = "lang_mixed"
# quality_filter, url_filter, word_filter, quality_select
QUALITY_FAILED = "quality_failed"
BLOCKED_BY = "blocked_by"
BAD_WORDS = "bad_words"
QUALITY_BUCKET = "quality_bucket"
# exact_dedup, minhash_dedup
DUP_CLUSTER = "dup_cluster"
DUP_CLUSTER_SIZE = "dup_cluster_size"
DUP_OF = "dup_of"
# decontaminate
CONTAMINATION = "contamination"
CONTAMINATED_BY = "contaminated_by"
# tokens
N_TOKENS = "n_tokens"
N_BYTES = "n_bytes"
N_TOKENS_ESTIMATED = "n_tokens_estimated"

# instruction data (instruct/): the columns of each method's canonical rows, besides the canonical ones
MESSAGES = "messages"
PROMPT = "prompt"
CHOSEN = "chosen"
REJECTED = "rejected"
QUESTION = "question"
ANSWER = "answer"
SOLUTION = "solution"
SPLIT = "split"  # instruct_split
INSTRUCT_COLUMNS = {"sft": (MESSAGES,), "dpo": (PROMPT, CHOSEN, REJECTED), "grpo": (QUESTION, ANSWER, SOLUTION)}

CANONICAL_COLUMNS = (ID, TEXT, SOURCE, URL, META)

DOCUMENT_SCHEMA = T.StructType(
    [
        T.StructField(ID, T.StringType(), False),
        T.StructField(TEXT, T.StringType(), True),
        T.StructField(SOURCE, T.StringType(), False),
        T.StructField(URL, T.StringType(), True),
        T.StructField(META, T.MapType(T.StringType(), T.StringType()), True),
        T.StructField(REMOVED_BY, T.StringType(), True),
    ]
)

ARROW_DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field(ID, pa.string(), nullable=False),
        pa.field(TEXT, pa.string()),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(URL, pa.string()),
        pa.field(META, pa.map_(pa.string(), pa.string())),
        pa.field(REMOVED_BY, pa.string()),
    ]
)


def stable_id(source: str, key: str) -> str:
    """A 128-bit hex id: sha256 of ``source``, a NUL and a native key (WARC record id, original id,
    file path + row), cut to 32 hex digits. Deterministic across reruns; never from partition order.

    `spark_stable_id` computes the same value with Spark's native `sha2`.
    """
    data = source.encode("utf-8") + b"\x00" + key.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:32]


def numbered_ids(source: str, prefix: str, numbers) -> list[str]:
    """`stable_id(source, f"{prefix}{n}")` for each number n, without building each key as a string (the ids
    of a file's lines: prefix `relpath:`)."""
    head = source.encode("utf-8") + b"\x00" + prefix.encode("utf-8", "surrogatepass")
    sha256 = hashlib.sha256
    return [sha256(head + b"%d" % n).hexdigest()[:32] for n in numbers]


def spark_stable_id(source_col, key_col):
    """`stable_id` as a Spark column expression (JVM-side, no Python)."""
    from pyspark.sql import functions as F

    joined = F.concat(source_col, F.lit("\u0000"), key_col)
    return F.substring(F.sha2(joined, 256), 1, 32)
