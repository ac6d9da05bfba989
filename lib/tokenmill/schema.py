"""The canonical document schema, its column names, and stable document ids."""

from __future__ import annotations

import hashlib

import pyarrow as pa
from pyspark.sql import types as T

ID = "id"
TEXT = "text"
SOURCE = "source"
URL = "url"
META = "meta"
LANG = "lang"
LANG_SCORE = "lang_score"
DUP_CLUSTER = "dup_cluster"
N_TOKENS = "n_tokens"
# Set by a filter stage on the rows it removes ("<stage>:<reason>"); null on kept rows.
# The writer partitions by it, so kept files never carry it.
REMOVED_BY = "removed_by"

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


def spark_stable_id(source_col, key_col):
    """`stable_id` as a Spark column expression (JVM-side, no Python)."""
    from pyspark.sql import functions as F

    joined = F.concat(source_col, F.lit("\u0000"), key_col)
    return F.substring(F.sha2(joined, 256), 1, 32)


def missing_columns(columns: list[str] | tuple[str, ...], required: tuple[str, ...]) -> list[str]:
    """Required column names absent from ``columns``, in the order required."""
    present = set(columns)
    return [name for name in required if name not in present]


def require_columns(df_columns, required: tuple[str, ...], stage: str) -> None:
    """Raise a clear error naming the stage and the missing columns (checked before any work)."""
    missing = missing_columns(list(df_columns), required)
    if missing:
        raise ValueError(
            f"stage '{stage}' needs column(s) {', '.join(missing)}; the input has {', '.join(df_columns)}"
        )
