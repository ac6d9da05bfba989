"""Every source preset reads its dataset's published schema: a fixture per preset (a few rows written by the
team, laid out as the hub repository lays them out) is read through the preset from a local mirror
(`path:`), and the mapped rows equal the values the fixture expects."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import TypeAdapter

from tokenmill.catalog import load_stages
from tokenmill.io.sources import Source, read_source
from tokenmill.pipeline.plan import resolve_source_presets
from tokenmill.schema import REMOVED_BY

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "conf" / "presets" / "sources"
FIXTURES = Path(__file__).parent / "fixtures"
NAMED = sorted(p.stem for p in PRESETS.glob("*.yaml") if not p.stem.startswith("sample_"))


def _write(path: Path, fixture: dict) -> None:
    """The fixture as the file the dataset publishes: its verbatim `content` (JSON objects, CSV, TSV), or its
    `rows` as Parquet or JSON lines (compressed by the name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if "content" in fixture:
        path.write_text(fixture["content"], encoding="utf-8")
        return
    rows = fixture["rows"]
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist([_binary(r) for r in rows]), path)
        return
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)


def _binary(value):
    """Hugging Face Audio/Image cells ({bytes, path}): JSON holds the bytes as Latin-1 text; Parquet as binary."""
    if isinstance(value, dict):
        return {k: (v.encode("latin-1") if k == "bytes" and isinstance(v, str) else _binary(v)) for k, v in value.items()}
    return value


def _source(name: str, root: Path):
    raw = resolve_source_presets({"sources": [{"preset": name, "path": str(root)}]}, "test")
    return TypeAdapter(Source).validate_python(raw["sources"][0])


def _pairs(msgs) -> list[list[str]]:
    return [[m["role"], m["content"]] for m in msgs]


def test_every_preset_has_a_fixture_and_a_card():
    assert len(NAMED) >= 40
    missing = [n for n in NAMED if not (FIXTURES / f"{n}.json").exists()]
    assert missing == []
    for name in NAMED:
        raw = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
        assert raw["name"] == name and raw["about"]["license"], name
        assert raw["hub"].get("repo") or raw["about"]["access"] == "local-copy", name


@pytest.mark.parametrize("name", NAMED)
def test_preset_maps_its_published_schema(spark, tmp_path, name):
    load_stages()
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    src = _source(name, tmp_path)
    rel = fixture.get("file") or src.hub.files.replace("*", "00000")
    _write(tmp_path / rel, fixture)
    df = read_source(spark, src, f"sources[{name}]", str(tmp_path / "work"))
    rows = [r.asDict(recursive=True) for r in df.collect()]  # small: a fixture's few rows
    kept = [r for r in rows if r[REMOVED_BY] is None]
    expect = fixture["expect"]
    assert len(kept) == expect["rows"], [r[REMOVED_BY] for r in rows]
    first = kept[0]
    for key, value in expect["first"].items():
        if key == "meta":
            got = dict(first["meta"]) if not isinstance(first["meta"], dict) else first["meta"]
            assert {k: got.get(k) for k in value} == value
        elif key in ("messages", "prompt", "chosen", "rejected"):
            assert _pairs(first[key]) == value
        else:
            assert first[key] == value, key
    assert all(r["source"] == name for r in kept)


def test_hub_paths_and_a_local_mirror(tmp_path):
    src = _source("fineweb", tmp_path)
    assert src.resolved_paths() == [f"{tmp_path}/data/CC-MAIN-2024-10/*.parquet"]
    raw = resolve_source_presets({"sources": [{"preset": "openhermes_2_5"}]}, "test")
    hub = TypeAdapter(Source).validate_python(raw["sources"][0])
    assert hub.resolved_paths() == ["hf://datasets/teknium/OpenHermes-2.5@refs%2Fconvert%2Fparquet/default/train/*.parquet"]
    given = TypeAdapter(Source).validate_python({**raw["sources"][0], "paths": ["/data/x/*.parquet"]})
    assert given.resolved_paths() == ["/data/x/*.parquet"]
