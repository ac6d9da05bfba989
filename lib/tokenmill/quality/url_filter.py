"""The `url_filter` stage: block lists for URLs (domains, subdomains, full URLs, UT1 blacklist folders,
banned words in the URL).

Lists are read once on the driver and reach executors inside the UDF (Spark broadcasts large closures);
domains and URLs travel as a sorted array of 64-bit hashes, so a multi-million-entry list costs 8 bytes
an entry and a lookup is a binary search over a whole Arrow batch. Nothing is joined or shuffled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import fsspec
import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..config import Strict
from ..errors import ConfigError
from ..io.paths import expand
from ..pipeline.stage import (
    ArrowStep,
    StageContext,
    StageParams,
    arrow_form,
    live,
    live_arrow,
    mark_removed,
    mark_removed_arrow,
    register,
)
from ..schema import BLOCKED_BY, URL


def read_list(path: str, where: str) -> list[str]:
    """Entries of a list file: one per line, '#' comments and blank lines ignored (UT1 and LDNOOBW formats)."""
    try:
        with fsspec.open(path, "rt", encoding="utf-8", errors="replace", compression="infer") as fh:
            return [s for s in (line.split("#", 1)[0].strip() for line in fh) if s]
    except FileNotFoundError:
        raise ConfigError(f"{where}: list file not found: {path}") from None


def _hash(s: str) -> int:
    return xxhash.xxh3_64_intdigest(s.encode("utf-8"))


def _sorted_hashes(entries: list[str]) -> np.ndarray:
    return np.unique(np.fromiter((_hash(e) for e in entries), dtype=np.uint64, count=len(entries)))


def normalise_domain(d: str) -> str:
    d = d.strip().lower().rstrip(".")
    if "//" in d:
        d = urlsplit(d).hostname or ""
    d = d.split("/", 1)[0].split(":", 1)[0]
    return d[4:] if d.startswith("www.") else d


def normalise_url(u: str) -> str:
    """host/path without scheme, www., query, fragment or trailing slash; lower-case host."""
    u = u.strip()
    parts = urlsplit(u if "//" in u else "//" + u)
    host = normalise_domain(parts.hostname or "")
    path = parts.path.rstrip("/")
    return host + path


def _domain_candidates(host: str) -> list[str]:
    """a.b.example.com -> [a.b.example.com, b.example.com, example.com, com]: a listed domain blocks subdomains."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _url_candidates(norm: str) -> list[str]:
    """example.com/a/b -> [example.com/a/b, example.com/a]: a listed URL blocks what is under it."""
    out = [norm]
    while "/" in norm:
        norm = norm.rsplit("/", 1)[0]
        if "/" in norm:
            out.append(norm)
    return out


class UT1Params(Strict):
    """A UT1 blacklist folder (<path>/<category>/domains and /urls); categories e.g. adult, gambling, malware."""

    path: str
    categories: list[str]


class UrlFilterParams(StageParams):
    """Block documents by URL: listed domains (and their subdomains), listed URLs, banned words in the URL."""

    block_domains: list[str] = Field(default_factory=list)  # list files: one domain per line
    block_urls: list[str] = Field(default_factory=list)  # list files: one URL (prefix) per line
    allow_domains: list[str] = Field(default_factory=list)  # list files: never blocked
    ut1: UT1Params | None = None
    banned_words: list[str] = Field(default_factory=list)  # a whole word of the URL -> blocked
    banned_words_files: list[str] = Field(default_factory=list)
    soft_banned_words: list[str] = Field(default_factory=list)  # blocked when at least soft_min_count appear
    soft_banned_words_files: list[str] = Field(default_factory=list)
    soft_min_count: int = Field(default=2, ge=1)  # DataTrove's URLFilter: 2
    banned_subwords: list[str] = Field(default_factory=list)  # anywhere in the URL with punctuation removed
    banned_subwords_files: list[str] = Field(default_factory=list)

    def files(self) -> list[str]:
        fs = [*self.block_domains, *self.block_urls, *self.allow_domains, *self.banned_words_files,
              *self.soft_banned_words_files, *self.banned_subwords_files]
        if self.ut1:
            fs += [f"{self.ut1.path}/{c}/{k}" for c in self.ut1.categories for k in ("domains", "urls")]
        return fs

    def fingerprint_extra(self) -> dict:
        return {"files": file_stamps(self.files())}


def file_stamps(paths: list[str]) -> list:
    """Size and modification time of each list file (io.paths.expand), so an edited list reruns the stage."""
    out = []
    for p in paths:
        try:
            f = expand([p])[0]
            out.append([p, f.size, f.mtime])
        except ConfigError:  # missing: the stage itself says so when it reads the list
            out.append([p, None, None])
    return out


class UrlLists:
    """The loaded lists, in the compact form that travels to executors."""

    def __init__(self, params: UrlFilterParams, where: str):
        domains, urls = [], []
        for p in params.block_domains:
            domains += read_list(p, where)
        for p in params.block_urls:
            urls += read_list(p, where)
        if params.ut1:
            for c in params.ut1.categories:
                base = f"{params.ut1.path.rstrip('/')}/{c}"
                domains += read_list(f"{base}/domains", where)
                if _exists(f"{base}/urls"):
                    urls += read_list(f"{base}/urls", where)
        allow = [normalise_domain(d) for p in params.allow_domains for d in read_list(p, where)]
        self.domains = _sorted_hashes([normalise_domain(d) for d in domains])
        self.urls = _sorted_hashes([normalise_url(u) for u in urls])
        self.allow = _sorted_hashes(allow)
        words = [w.lower() for w in params.banned_words] + [w.lower() for p in params.banned_words_files
                                                            for w in read_list(p, where)]
        soft = [w.lower() for w in params.soft_banned_words] + [w.lower() for p in params.soft_banned_words_files
                                                               for w in read_list(p, where)]
        sub = [w.lower() for w in params.banned_subwords] + [w.lower() for p in params.banned_subwords_files
                                                            for w in read_list(p, where)]
        self.words = frozenset(words)
        self.soft = frozenset(soft)
        self.soft_min = params.soft_min_count
        self.subwords = re.compile("|".join(re.escape(w) for w in sorted(set(sub), key=len, reverse=True))) \
            if sub else None
        self.sizes = {"domains": len(self.domains), "urls": len(self.urls), "allow_domains": len(self.allow),
                      "banned_words": len(self.words), "soft_banned_words": len(self.soft),
                      "banned_subwords": len(set(sub))}


def _exists(path: str) -> bool:
    fs, _, [p] = fsspec.get_fs_token_paths(path)
    return fs.exists(p)


def _member(sorted_hashes: np.ndarray, keys: list[str]) -> np.ndarray:
    if not len(sorted_hashes) or not keys:
        return np.zeros(len(keys), bool)
    h = np.fromiter((_hash(k) for k in keys), dtype=np.uint64, count=len(keys))
    i = np.searchsorted(sorted_hashes, h)
    i[i == len(sorted_hashes)] = 0
    return sorted_hashes[i] == h


_URL_WORDS = re.compile(r"[^a-z0-9]+")


def url_reasons(urls: list[str | None], lists: UrlLists) -> list[str | None]:
    """Why each URL is blocked ("domain:x", "url:x", "banned_word:x", "soft_banned_words:x,y",
    "banned_subword:x"), or None."""
    out: list[str | None] = [None] * len(urls)
    hosts: list[str] = []
    for u in urls:
        try:
            hosts.append(normalise_domain(urlsplit(u).hostname or "") if u else "")
        except ValueError:
            hosts.append("")
    # Domain and URL candidates of the whole batch, looked up in one vectorised search each.
    cand, owner = [], []
    for i, h in enumerate(hosts):
        for c in _domain_candidates(h) if h else []:
            cand.append(c)
            owner.append(i)
    allowed = set()
    if len(lists.allow):
        hit = _member(lists.allow, cand)
        allowed = {owner[j] for j in np.flatnonzero(hit).tolist()}
    hit = _member(lists.domains, cand)
    for j in np.flatnonzero(hit).tolist():
        i = owner[j]
        if i not in allowed and out[i] is None:
            out[i] = f"domain:{cand[j]}"
    if len(lists.urls):
        cand, owner = [], []
        for i, u in enumerate(urls):
            if u and out[i] is None and i not in allowed:
                for c in _url_candidates(normalise_url(u)):
                    cand.append(c)
                    owner.append(i)
        for j in np.flatnonzero(_member(lists.urls, cand)).tolist():
            if out[owner[j]] is None:
                out[owner[j]] = f"url:{cand[j]}"
    if lists.words or lists.soft or lists.subwords is not None:
        for i, u in enumerate(urls):
            if not u or out[i] is not None or i in allowed:
                continue
            low = u.lower()
            words = [w for w in _URL_WORDS.split(low) if w]
            bad = sorted(lists.words.intersection(words))
            if bad:
                out[i] = f"banned_word:{bad[0]}"
                continue
            soft = [w for w in words if w in lists.soft]
            if len(soft) >= lists.soft_min:
                out[i] = "soft_banned_words:" + ",".join(sorted(set(soft)))
                continue
            if lists.subwords is not None:
                m = lists.subwords.search("".join(words))
                if m:
                    out[i] = f"banned_subword:{m.group()}"
    return out


@register("url_filter", "filter", UrlFilterParams, requires=[URL], adds=[BLOCKED_BY], audit=[BLOCKED_BY])
def url_filter(ctx: StageContext, df: DataFrame, params: UrlFilterParams) -> DataFrame:
    """Remove documents whose URL is on a block list or carries banned words; `blocked_by` says which entry."""
    name = ctx.label
    lists = UrlLists(params, name)

    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for arr in batches:
            yield pa.array(url_reasons(arr.to_pylist(), lists), pa.string())

    reason = arrow_udf(run, "string")(F.when(live(df), F.col(URL)))
    out = df.withColumn(BLOCKED_BY, reason)
    out = mark_removed(out, F.col(BLOCKED_BY).isNotNull(), name,
                       F.split(F.col(BLOCKED_BY), ":").getItem(0))
    ctx.report("lists", lists.sizes)
    return out


@arrow_form("url_filter")
def url_filter_arrow(ctx: StageContext, params: UrlFilterParams, columns: list[str]) -> ArrowStep:
    """`url_filter` inside a fused pass: the same lookups on the live rows' URLs."""
    from pyspark.sql import types as T

    name = ctx.label
    lists = UrlLists(params, name)

    def fn(cols: dict) -> None:
        import pyarrow.compute as pc

        reasons = pa.array(url_reasons(live_arrow(cols, URL).to_pylist(), lists), pa.string())
        cols[BLOCKED_BY] = reasons
        mark_removed_arrow(cols, pc.is_valid(reasons), name, pc.list_element(pc.split_pattern(reasons, ":"), 0))

    ctx.report("lists", lists.sizes)
    return ArrowStep([T.StructField(BLOCKED_BY, T.StringType(), True)], fn)
