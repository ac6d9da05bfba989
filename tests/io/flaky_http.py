"""A local HTTP server that fails on a schedule, as Common Crawl's servers do on a bad day: 503 SlowDown,
429, connections cut part way through a body, stalls longer than the client's timeout. Ranges optional."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FlakyServer:
    """``files``: path -> bytes. ``schedule``: path -> actions for its successive GETs ("ok", "503", "429",
    "reset", "stall", "404"), "ok" once a list runs out. Every request is logged as (method, path, range start,
    action)."""

    def __init__(self, files: dict[str, bytes], schedule: dict[str, list[str]] | None = None,
                 ranges: bool = True, stall_s: float = 3.0):
        self.files, self.schedule, self.ranges, self.stall_s = files, schedule or {}, ranges, stall_s
        self.log: list[tuple[str, str, int | None, str]] = []
        self._lock = threading.Lock()
        self.url = ""

    def next_action(self, path: str) -> str:
        with self._lock:
            todo = self.schedule.get(path) or []
            return todo.pop(0) if todo else "ok"

    @contextmanager
    def running(self):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def _handler(state: FlakyServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _body(self):
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return None, None
            m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")) if state.ranges else None
            start = int(m.group(1)) if m else None
            return data, start

        def do_HEAD(self):
            data = state.files.get(self.path)
            state.log.append(("HEAD", self.path, None, "ok"))
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Accept-Ranges", "bytes" if state.ranges else "none")
            self.end_headers()

        def do_GET(self):
            data, start = self._body()
            if data is None:
                state.log.append(("GET", self.path, None, "404"))
                return
            action = state.next_action(self.path)
            state.log.append(("GET", self.path, start, action))
            if action in ("503", "429", "404"):
                self.send_response(int(action))
                if action != "404":
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if action == "stall":
                time.sleep(state.stall_s)
            body = data
            if start is not None:
                m = re.match(r"bytes=(\d+)-(\d*)", self.headers["Range"])
                end = int(m.group(2)) + 1 if m.group(2) else len(data)
                body = data[start:end]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes" if state.ranges else "none")
            self.end_headers()
            if action == "reset":  # the connection is cut part way through the body
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(0.3)  # the client has the first half before the cut
                self.close_connection = True
                self.connection.shutdown(2)
                return
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up on a stall
                pass

    return Handler
