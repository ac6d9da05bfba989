"""Input files read so that a flaky network does not lose them: bounded retries with exponential backoff and
full jitter on throttling (429, 503 SlowDown), server errors, resets and timeouts; a read that fails part way
resumes at the byte it reached (a range request where the server supports ranges, else the file is read again
from its start and the bytes already used are skipped). Retries, resumes and failures are counted per file
(`fetch_stats`), the read stage sums them into the manifest.

Backoff with full jitter (sleep uniform in [0, min(cap, base * 2^attempt)]) is AWS's recommended scheme for
throttled clients ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015); Common Crawl asks clients
of data.commoncrawl.org to back off on 503 SlowDown the same way.
"""

from __future__ import annotations

import errno
import io
import logging
import random
import time
from dataclasses import dataclass, field

import fsspec
from pydantic import Field

from ..config import Strict

log = logging.getLogger("tokenmill.read")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSIENT_ERRNO = frozenset({errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.ETIMEDOUT,
                              errno.EPIPE, errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH})
# what object stores and their clients say when they throttle or drop a request (s3fs turns botocore's
# errors into OSError with the service's code in the message)
_TRANSIENT_WORDS = ("SlowDown", "ServiceUnavailable", "Throttl", "RequestTimeout", "InternalError",
                    "Connection reset", "Server disconnected", "timed out", "Timeout")


class RetryPolicy(Strict):
    """How a source's files are fetched: attempts per failing read, backoff, and the socket timeout."""

    attempts: int = Field(default=6, ge=1)  # tries of one read before the file is given up (a counted skip)
    backoff_s: float = Field(default=0.5, gt=0)  # first backoff; doubled per attempt, full jitter
    max_backoff_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)  # http(s): connect and per-read socket timeout


@dataclass
class FileFetch:
    """What fetching one file took: retries (failed attempts retried), resumes (reads continued at an
    offset > 0 after a failure), restarts (the server had no ranges: read again from byte 0)."""

    retries: int = 0
    resumes: int = 0
    restarts: int = 0
    failed: bool = False
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"retries": self.retries, "resumes": self.resumes, "restarts": self.restarts,
               "failed": int(self.failed)}
        if self.errors:
            out["last_error"] = self.errors[-1][:300]
        return out


# Per worker process: the fetch record of each file opened since the reader last took them (`take_stats`).
_STATS: dict[str, FileFetch] = {}


def take_stats(path: str) -> FileFetch | None:
    """The fetch record of ``path`` (removed), None when it was read without a retry."""
    rec = _STATS.pop(path, None)
    return rec if rec is not None and (rec.retries or rec.failed) else None


class FetchError(Exception):
    """A file that could not be read after the policy's attempts: where it stopped and why. Not an OSError,
    so a reader's handling of damaged data never takes it for a corrupt file."""

    def __init__(self, path: str, offset: int, attempts: int, detail: str):
        super().__init__(f"{path}: byte {offset}: gave up after {attempts} attempts: {detail}")
        self.path, self.offset, self.attempts, self.detail = path, offset, attempts, detail


def transient(exc: BaseException) -> bool:
    """True for failures worth retrying: throttling, server errors, resets, timeouts; never a missing file,
    a refused permission or a client error."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    if isinstance(status, int) and 400 <= status < 600:
        return status in TRANSIENT_STATUS
    try:
        import aiohttp

        if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError)):
            return True
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        pass
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO:
        return True
    return isinstance(exc, (OSError, ValueError)) and any(w in str(exc) for w in _TRANSIENT_WORDS)


def _no_ranges(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "support range requests" in str(exc)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        return float(headers.get("Retry-After")) if headers.get("Retry-After") is not None else None
    except (TypeError, ValueError):
        return None


class ResilientFile(io.RawIOBase):
    """A read-only binary file over fsspec that retries failed reads and resumes at its position."""

    def __init__(self, path: str, storage_options: dict | None = None, policy: RetryPolicy | None = None,
                 sleep=time.sleep):
        super().__init__()
        self.path, self.policy, self._sleep = path, policy or RetryPolicy(), sleep
        options = dict(storage_options or {})
        if path.startswith(("http://", "https://")) and "client_kwargs" not in options:
            import aiohttp

            t = self.policy.timeout_s
            options["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=t, sock_read=t)}
        self._fs, self._key = fsspec.core.url_to_fs(path, **options)
        self.stats = _STATS.setdefault(path, FileFetch())
        self._pos = 0
        self._file = None
        self._size: int | None = None
        self._streaming = False  # the server ignores ranges: reopen from byte 0
        self._attempt(lambda: None)

    # -- io.RawIOBase
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self._fs.size(self._key)
        if offset != self._pos:
            if self._streaming or self._file is None or not self._file.seekable():
                self._drop()  # reopened at the new position by the next read
            else:
                self._file.seek(offset)
            self._pos = offset
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._attempt(lambda: self._file.read(len(view)))
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        self._drop()
        super().close()

    # -- retries
    def _drop(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped
                pass
            self._file = None

    def _reopen(self) -> None:
        kwargs = {"block_size": 0} if self._streaming else {}
        if self._size is not None and self._fs.protocol[0] in ("http", "https"):
            kwargs["size"] = self._size  # known from the first open: no HEAD per retry
        handle = self._fs.open(self._key, "rb", **kwargs)
        if self._size is None:
            self._size = getattr(handle, "size", None)
        if self._pos and not self._streaming:
            try:
                handle.seek(self._pos)
            except (ValueError, io.UnsupportedOperation):  # a streaming file: the server gave no size/ranges
                self._streaming = True
        if self._pos and self._streaming:
            self.stats.restarts += 1
            left = self._pos
            while left:  # no ranges: read again from the start, dropping what was already used
                chunk = handle.read(min(left, 8 << 20))
                if not chunk:
                    raise OSError(errno.EIO, f"{self.path}: the file is shorter than before ({self._pos} bytes)")
                left -= len(chunk)
        self._file = handle

    def _attempt(self, action):
        """``action()`` on an open file; a transient failure closes it, backs off and tries again, reopened at
        the position reached, up to the policy's attempts; then FetchError."""
        failures = 0
        while True:
            try:
                if self._file is None:
                    self._reopen()
                    if failures and self._pos:
                        self.stats.resumes += 1
                return action()
            except Exception as exc:  # noqa: BLE001 - classified below: transient ones are retried
                self._drop()
                if _no_ranges(exc) and not self._streaming:
                    self._streaming = True
                elif not transient(exc):
                    raise
                failures += 1
                detail = f"{type(exc).__name__}: {exc}"
                self.stats.errors.append(detail)
                if failures >= self.policy.attempts:
                    self.stats.failed = True
                    raise FetchError(self.path, self._pos, failures, detail) from exc
                self.stats.retries += 1
                delay = _retry_after(exc)  # the server's own wait, within the policy's cap
                delay = min(delay, self.policy.max_backoff_s) if delay is not None else None
                if delay is None:
                    cap = min(self.policy.max_backoff_s, self.policy.backoff_s * 2 ** (failures - 1))
                    delay = random.uniform(0, cap)
                log.warning("fetch %s: byte %d: %s; retry %d of %d in %.2f s", self.path, self._pos,
                            detail[:200], failures, self.policy.attempts - 1, delay)
                self._sleep(delay)


def open_input(path: str, storage_options: dict | None = None, policy: RetryPolicy | None = None,
               compression: str | None = None, buffer: int = 1 << 20):
    """``path`` opened for reading with retries: a buffered binary file, decompressed when ``compression``
    is "infer" (by the file name) or a codec name. Local files are opened directly (nothing to retry)."""
    from fsspec.compression import compr
    from fsspec.utils import infer_compression

    codec = infer_compression(path) if compression == "infer" else compression
    if "://" not in path or path.startswith("file://"):
        raw = fsspec.open(path, "rb").open()
    else:
        raw = io.BufferedReader(ResilientFile(path, storage_options, policy), buffer)
    return compr[codec](raw, mode="rb") if codec else raw
