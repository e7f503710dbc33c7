"""A local HTTP server for standing in for remote services in tests and benchmarks.

``FakeService`` runs a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a daemon thread and
dispatches requests to ``route(method, path, query, headers, body) -> Reply`` of a subclass.
Failures are injected per route with :meth:`FakeService.inject`: the next ``times`` requests
whose path matches get the given status/body/headers (``hang_s`` delays the reply, to trigger a
read timeout). ``latency_s`` delays every reply of a route (the paper's latencies, for benchmarks).
Every request is recorded in ``requests`` (method, path, headers, parsed JSON body).
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None                 # dict/list -> JSON, bytes -> raw, str -> text
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = ""
    hang_s: float = 0.0              # sleep before answering


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: Any


@dataclass
class _Injection:
    pattern: re.Pattern
    reply: Reply
    times: int
    method: str | None


class FakeService:
    """Base class: subclasses implement ``route``."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self._inject: list[_Injection] = []
        self.latency_s: dict[str, float] = {}
        self._lock = threading.Lock()
        svc = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_a):  # quiet
                pass

            def _handle(self, method: str):
                parts = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                rec = Recorded(method, parts.path, parse_qs(parts.query), dict(self.headers), body)
                with svc._lock:
                    svc.requests.append(rec)
                reply = svc._injected(method, parts.path) or svc._route_safe(rec)
                delay = reply.hang_s + svc._latency(parts.path)
                if delay:
                    time.sleep(delay)
                self._send(reply)

            def _send(self, r: Reply):
                if isinstance(r.body, (dict, list)):
                    data, ctype = json.dumps(r.body).encode(), "application/json"
                elif isinstance(r.body, bytes):
                    data, ctype = r.body, "application/octet-stream"
                else:
                    data, ctype = (r.body or "").encode(), "text/plain"
                try:
                    self.send_response(r.status)
                    self.send_header("Content-Type", r.content_type or ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in r.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):  # http.server API
                self._handle("GET")

            def do_POST(self):  # http.server API
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()

    # ---- configuration ----------------------------------------------------------------------------
    def inject(self, path_regex: str, reply: Reply, times: int = 1, method: str | None = None) -> None:
        """The next ``times`` requests matching ``path_regex`` (and ``method``) get ``reply``."""
        with self._lock:
            self._inject.append(_Injection(re.compile(path_regex), reply, times, method))

    def clear(self) -> None:
        """Forget recorded requests, injected replies and latencies."""
        with self._lock:
            self.requests.clear()
            self._inject.clear()
            self.latency_s.clear()

    def clear_injections(self) -> None:
        with self._lock:
            self._inject.clear()

    def set_latency(self, path_regex: str, seconds: float) -> None:
        with self._lock:
            self.latency_s[path_regex] = seconds

    def _latency(self, path: str) -> float:
        with self._lock:
            return sum(s for rx, s in self.latency_s.items() if re.search(rx, path))

    def _injected(self, method: str, path: str) -> Reply | None:
        with self._lock:
            for inj in self._inject:
                if inj.times > 0 and inj.pattern.search(path) and (inj.method in (None, method)):
                    inj.times -= 1
                    return inj.reply
        return None

    def _route_safe(self, rec: Recorded) -> Reply:
        try:
            return self.route(rec)
        except Exception as e:  # noqa: BLE001 - a bug in a fake must show up as a 500, not a hang
            return Reply(500, {"error": {"message": f"fake server bug: {type(e).__name__}: {e}"}})

    def route(self, rec: Recorded) -> Reply:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def all_text(self) -> str:
        """Everything the clients sent (for tests that look for leaked secrets elsewhere)."""
        with self._lock:
            return "\n".join(f"{r.method} {r.path} {r.headers} {r.body!r}" for r in self.requests)
