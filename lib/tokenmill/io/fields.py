"""Column mapping for JSONL / Parquet / Hugging Face sources, with presets for common corpus layouts."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import Strict

# Published layouts, so these corpora load without code. `meta_fields: None` keeps every other field.
LAYOUTS: dict[str, dict[str, Any]] = {
    "default": {"text_field": "text", "id_field": None, "url_field": None},
    "dolma": {"text_field": "text", "id_field": "id", "url_field": "metadata.url"},
    "redpajama": {"text_field": "text", "id_field": None, "url_field": "meta.url"},
    "refinedweb": {"text_field": "content", "id_field": None, "url_field": "url"},
    "the_stack": {"text_field": "content", "id_field": "hexsha", "url_field": None},
    "fineweb": {"text_field": "text", "id_field": "id", "url_field": "url"},
}


class FieldMap(Strict):
    """Which input fields become `text`, `id`, `url` and `meta`. Dotted names reach into nested objects."""

    layout: str = "default"
    text_field: str | None = None
    id_field: str | None = None
    url_field: str | None = None
    meta_fields: list[str] | None = None  # None: every other top-level field; []: none
    # Dataset columns carried through unchanged, as top-level columns of the same name (Parquet and Hugging
    # Face sources): media such as the Hugging Face `Audio` / `Image` {bytes, path} structs, for the audio
    # and image stages. They are left out of `meta`.
    keep_fields: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _apply_layout(self) -> FieldMap:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; known: {', '.join(sorted(LAYOUTS))}")
        preset = LAYOUTS[self.layout]
        for key, value in preset.items():
            if getattr(self, key) is None and value is not None:
                object.__setattr__(self, key, value)
        return self

    def used_top_level(self) -> set[str]:
        """Top-level fields mapped whole to text/id/url (left out of meta); nested ones keep their parent."""
        return {f for f in (self.text_field, self.id_field, self.url_field) if f and "." not in f} | set(self.keep_fields)


class MediaMap(Strict):
    """Where a source's rows keep their audio (or image), for the media stages: a column (the Hugging Face
    {bytes, path} struct, bytes, or a path) or `meta.<key>`; `path_format` builds the path from the value
    (`{}`) and other meta fields (`{name}`; `{:.2}` is a value's first two characters), e.g.
    `FSD50K.dev_audio/{}.wav`; relative paths are under `root` (itself under the source's local copy `path`
    when relative). `text: labels` reads a comma-separated label list (FSD50K, AudioSet) as a readable caption."""

    audio: str | None = None
    image: str | None = None
    path_format: str | None = None
    root: str | None = None
    text: Literal["as_is", "labels"] = "as_is"
    # Image–caption rows: the meta keys of the image's size and scores (None: the usual names are tried,
    # e.g. WIDTH / width / image_width, similarity, punsafe, pwatermark); `image_size: false` when width and
    # height describe something else (Visual Genome's are a region's).
    width: str | None = None
    height: str | None = None
    similarity: str | None = None
    nsfw: str | None = None
    watermark: str | None = None
    image_size: bool = True


# meta keys tokenmill sets itself (where a row came from); a dataset field of the same name is kept under
# `field.<name>` (LibriSpeech has a `file` column, for one).
RESERVED_META = ("file", "line", "where", "orig_id")


def meta_key(name: str) -> str:
    """The meta key of a dataset field: its name, or `field.<name>` when tokenmill uses that name."""
    return f"field.{name}" if name in RESERVED_META else name


def lookup(record: dict, dotted: str) -> Any:
    """record['a']['b'] for 'a.b' (a literal key with dots wins); a missing key gives KeyError."""
    if dotted in record:
        return record[dotted]
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def as_meta_value(value: Any) -> str | None:
    """A field value as a meta string: scalars as text, nested values as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


class InstructMap(Strict):
    """How a source's records become instruction data (`instruct/`): the method they feed (`for`: sft, dpo
    or grpo), their layout (`auto`: detected from the first records), renamed fields, the template of
    templated `text`, where GRPO answers come from, the margin that makes a preference pair from scores,
    and which OASST1 threads to keep."""

    model_config = Strict.model_config | {"populate_by_name": True}

    use: Literal["sft", "dpo", "grpo"] = Field(alias="for")
    layout: str = "auto"
    fields: dict[str, str] = Field(default_factory=dict)  # our name -> the dataset's (e.g. prompt: question)
    template: Literal["auto", "chatml", "llama2", "alpaca"] = "auto"
    answer_from: Literal["auto", "field", "boxed", "hashes", "last_number"] = "auto"
    margin: float = Field(default=0.0, ge=0.0)
    threads: Literal["best", "all"] = "best"
    id_field: str | None = None  # ids from this field (else from file and line / row)
    detect_rows: int = Field(default=200, gt=0)  # records read on the driver to detect the layout
