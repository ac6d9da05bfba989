"""Where a named dataset's files live on the Hugging Face hub, and what a preset records about it.

A source preset (conf/presets/sources/<name>.yaml) names its hub repository and the glob of the files to
read; the same files are read from a local mirror when the source gives `path:` (a folder laid out as the
repository is), so one mapping serves online and offline runs. Hub files are spread over tasks (`io.tasks`) through
fsspec (`hf://` paths, `huggingface_hub`'s filesystem) or by Spark's Parquet reader, never through a
`datasets` object on the driver.
"""

from __future__ import annotations

import posixpath
from typing import Literal
from urllib.parse import quote

from pydantic import Field

from ..config import Strict
from ..errors import ConfigError

Modality = Literal["text", "code", "image-text", "audio-text"]
Use = Literal["pretrain", "sft", "dpo", "grpo", "eval", "image-text", "audio-text"]
Access = Literal["open", "gated", "second-download", "local-copy", "taken-down"]


class HubLocation(Strict):
    """A dataset's files on the hub: repository, revision, the config/subset and split they hold, and the
    glob of the files (relative to the repository root, or to a local mirror's root)."""

    repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")  # None: not on the hub (a local copy)
    files: str = Field(min_length=1)
    revision: str = "main"
    config: str | None = None
    split: str = "train"

    def url(self) -> str:
        """The `hf://` glob of the files (revisions such as refs/convert/parquet are URL-quoted)."""
        if self.repo is None:
            raise ConfigError(f"this dataset is not on the hub: download it and give `path:` (the folder that holds "
                              f"{self.files})")
        rev = "" if self.revision == "main" else "@" + quote(self.revision, safe="")
        return f"hf://datasets/{self.repo}{rev}/{self.files}"

    def under(self, root: str) -> str:
        """The files' glob under a local mirror of the repository."""
        return posixpath.join(root.rstrip("/"), self.files)


class DatasetCard(Strict):
    """What a preset records about its dataset, beyond how to read it (shown by `tokenmill presets`)."""

    title: str
    modality: Modality
    use: list[Use] = Field(min_length=1)
    languages: list[str] = Field(default_factory=list)
    license: str
    hub_layout: str  # the files as published: "parquet", "jsonl.gz", "json array", "tar shards", ...
    schema_: dict[str, str] = Field(alias="schema")  # the native columns and their types, as published
    mapping: dict[str, str] = Field(default_factory=dict)  # our column -> the dataset's (what the preset maps)
    access: Access = "open"
    note: str | None = None  # gated access, second downloads, where a taken-down dataset lives now
    size: str | None = None  # published size (rows, tokens or bytes)

    model_config = Strict.model_config | {"populate_by_name": True}
