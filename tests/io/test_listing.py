"""One listing of the inputs: a request per pattern (never per file), and one listing per run."""

from __future__ import annotations

import gzip
import json
import posixpath

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFile
from fsspec.spec import AbstractFileSystem
from tests.conftest import write_config

from tokenmill.errors import ConfigError
from tokenmill.io import sources
from tokenmill.io.paths import UNKNOWN_SIZE, expand
from tokenmill.io.sources import WarcSource, list_files, one_listing


class ObjectStore(AbstractFileSystem):
    """An object store as the driver sees it: LIST of a prefix and HEAD of a key are the requests, counted."""

    protocol = "countingstore"
    cachable = False
    objects: dict[str, bytes] = {}
    requests: list[tuple[str, str]] = []

    def _dirs(self) -> set[str]:
        out = set()
        for key in self.objects:
            parent = posixpath.dirname(key)
            while parent:
                out.add(parent)
                parent = posixpath.dirname(parent)
        return out

    def _file(self, key: str) -> dict:
        return {"name": key, "size": len(self.objects[key]), "type": "file", "LastModified": "2026-11-01T00:00:00"}

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path).rstrip("/")
        self.requests.append(("LIST", path))
        out = [self._file(k) for k in self.objects if posixpath.dirname(k) == path]
        out += [{"name": d, "size": 0, "type": "directory"} for d in self._dirs() if posixpath.dirname(d) == path]
        return out if detail else sorted(o["name"] for o in out)

    def info(self, path, **kwargs):
        path = self._strip_protocol(path).rstrip("/")
        self.requests.append(("HEAD", path))
        if path in self.objects:
            return self._file(path)
        if path in self._dirs():
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def _open(self, path, mode="rb", **kwargs):
        return MemoryFile(self, path, self.objects[self._strip_protocol(path)])


@pytest.fixture
def store():
    fsspec.register_implementation(ObjectStore.protocol, ObjectStore, clobber=True)
    ObjectStore.objects, ObjectStore.requests = {}, []
    yield ObjectStore
    ObjectStore.objects, ObjectStore.requests = {}, []


def _fill(store, n: int) -> None:
    store.objects = {f"crawl/segments/s1/warc/f{i:04d}.warc.gz": b"x" * (i + 1) for i in range(n)}
    store.requests.clear()


@pytest.mark.parametrize("n", [20, 400])
def test_a_glob_is_one_listing_whatever_the_number_of_files(store, n):
    _fill(store, n)
    files = expand(["countingstore://crawl/segments/s1/warc/*.warc.gz"])
    assert len(files) == n
    assert files[3].size == 4 and files[3].mtime == "2026-11-01T00:00:00"
    assert files[3].relpath == "f0003.warc.gz"
    # glob's own look at its base folder, then one LIST; no request names a file (was one HEAD per file)
    assert [r for r in store.requests if r[0] == "LIST"] == [("LIST", "crawl/segments/s1/warc")]
    assert not [r for r in store.requests if r[1].endswith(".warc.gz")]
    assert len(store.requests) <= 3


def test_a_folder_is_one_head_and_one_listing_and_a_file_one_head(store):
    _fill(store, 50)
    files = expand(["countingstore://crawl/segments/s1/warc"])
    assert len(files) == 50 and files[0].relpath == "f0000.warc.gz"
    assert store.requests == [("HEAD", "crawl/segments/s1/warc"), ("LIST", "crawl/segments/s1/warc")]
    store.requests.clear()
    [one] = expand(["countingstore://crawl/segments/s1/warc/f0007.warc.gz"])
    assert one.size == 8 and store.requests == [("HEAD", "crawl/segments/s1/warc/f0007.warc.gz")]
    with pytest.raises(ConfigError, match="no such file"):
        expand(["countingstore://crawl/segments/s1/warc/missing.warc.gz"], where="sources[0].paths")


def test_a_paths_manifest_is_taken_as_listed_with_no_request_per_file(store, tmp_path):
    manifest = tmp_path / "warc.paths.gz"
    keys = [f"crawl-data/CC-MAIN-2026-40/segments/17/warc/CC-{i:05d}.warc.gz" for i in range(300)]
    manifest.write_bytes(gzip.compress("\n".join(keys).encode()))
    src = WarcSource(name="cc", format="warc", paths_manifest=str(manifest),
                     manifest_prefix="countingstore://commoncrawl/")
    files = list_files(src, "sources[0]")
    assert len(files) == 300 and store.requests == []
    assert files[0].path == "countingstore://commoncrawl/" + keys[0]
    assert files[0].size == UNKNOWN_SIZE and files[0].relpath == "CC-00000.warc.gz"
    assert len({f.relpath for f in files}) == 300


def test_one_listing_per_source_and_run(spark, tmp_path, monkeypatch):
    """The plan lists the inputs (fingerprint, manifest); the read spreads that same listing over tasks."""
    from tokenmill.pipeline import load_pipeline, run

    data = tmp_path / "in"
    data.mkdir()
    for i in range(4):
        (data / f"part-{i}.jsonl").write_text("".join(
            json.dumps({"id": f"{i}-{j}", "text": f"document {j} of file {i} with some words"}) + "\n"
            for j in range(5)))
    calls = []
    real = sources.expand

    def counting(patterns, *args, **kwargs):
        calls.append(list(patterns))
        return real(patterns, *args, **kwargs)

    monkeypatch.setattr(sources, "expand", counting)
    cfg = write_config(tmp_path / "p.yaml", {
        "name": "listing", "output": str(tmp_path / "out"),
        "sources": [{"name": "a", "format": "jsonl", "paths": str(data / "*.jsonl"),
                     "fields": {"id_field": "id"}}],
        "stages": [{"stage": "read"}, {"stage": "write"}]})
    result = run(spark, load_pipeline(str(cfg)))
    assert result.manifest["output"]["rows"] == 20
    assert result.manifest["inputs"][0]["n_files"] == 4
    assert calls == [[str(data / "*.jsonl")]]  # was twice: once for the plan, once more in the read


def test_outside_a_run_each_call_lists_again(tmp_path):
    (tmp_path / "a.jsonl").write_text("{}\n")
    src = sources.JsonlSource(name="a", format="jsonl", paths=str(tmp_path / "*.jsonl"))
    assert len(list_files(src, "s")) == 1
    (tmp_path / "b.jsonl").write_text("{}\n")
    assert len(list_files(src, "s")) == 2  # a notebook's second call sees the new file
    with one_listing():
        first = list_files(src, "s")
        (tmp_path / "c.jsonl").write_text("{}\n")
        assert list_files(src, "s") is first
