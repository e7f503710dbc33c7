"""HTTP for remote backends: timeouts, retries, cancellation, polling, checked downloads, statistics.

Retry policy (:meth:`RemoteClient.request`):
- connection errors, timeouts, 429 and 5xx are retried up to ``max_retries`` times with jittered
  exponential backoff (``backoff_base_s * 2**attempt``, full jitter, capped at ``backoff_max_s``);
  a ``Retry-After`` header (seconds or an HTTP date) on 429/503/5xx is honoured instead, up to
  ``max_retry_after_s`` (a longer wait fails at once with the server's figure in the message);
- every other 4xx fails at once (retrying a rejected key or a bad request cannot help);
- a request marked ``idempotent=False`` (creating a billed generation job) is not retried after a
  read timeout or a broken connection, when the service may have received it: a second job
  could be billed twice (it is retried when it never left: connect errors, 429, 5xx replies).
Every wait and every request in flight is cancellable: :class:`exoactor.progress.Canceled` is
raised within ~0.1 s of ``cancel.is_set()`` (an abandoned request finishes in its own thread).
Redirects are followed by hand so that the key headers go to the original host only (a
signed storage URL on another host never sees the key).
"""
from __future__ import annotations

import email.utils
import json
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urljoin, urlsplit

from exoactor.progress import NEVER_CANCELED, CancelToken, ProgressCallback, check_cancel, sleep_cancellable
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.secrets import SecretSource

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
USER_AGENT = "exoactor-ros2"
ErrorMapper = Callable[[int, Any, str], "RemoteError | None"]
"""mapper(status, parsed JSON body or None, text) -> a service-specific RemoteError, or None."""


@dataclass
class RemoteStats:
    """Calls, retries, errors and seconds spent in one backend's remote requests (thread-safe)."""

    backend: str
    calls: int = 0
    retries: int = 0
    errors: int = 0
    seconds: float = 0.0
    bytes_downloaded: int = 0
    cache_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **delta: float) -> None:
        with self._lock:
            for k, v in delta.items():
                setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict:
        with self._lock:
            return {"backend": self.backend, "calls": self.calls, "retries": self.retries, "errors": self.errors,
                    "seconds": round(self.seconds, 3), "bytes_downloaded": self.bytes_downloaded,
                    "cache_hits": self.cache_hits}


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _clean(text: str, limit: int = 300) -> str:
    """One printable line, bounded (server text quoted in user messages)."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_message(body: Any, text: str) -> str:
    """The human part of an error reply in the usual shapes (Google, OpenAI, Kling), else the text."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("message"):
            return str(body["message"])
    return text


class RemoteClient:
    """Requests to one service on behalf of one backend (one instance per backend object).

    ``headers`` are sent on every request to ``base_url``'s host (keys go here: they are
    registered with ``secrets`` for redaction). ``error_mapper`` turns service-specific error
    bodies into a RemoteError before the generic status mapping.
    """

    def __init__(self, backend: str, base_url: str, *, headers: dict[str, str] | None = None,
                 secrets: SecretSource | None = None, connect_timeout_s: float = 10.0, read_timeout_s: float = 60.0,
                 max_retries: int = 4, backoff_base_s: float = 1.0, backoff_max_s: float = 30.0,
                 max_retry_after_s: float = 120.0, error_mapper: ErrorMapper | None = None,
                 key_hint: str = "the API key"):
        import requests  # noqa: PLC0415 - optional at import time of the package

        if not re.match(r"^https?://[^/\s]+", base_url or ""):
            raise RemoteError(Reason.CONFIG, f"base_url must be an http(s) URL, got {base_url!r}", backend=backend)
        for name, v in (("connect_timeout_s", connect_timeout_s), ("read_timeout_s", read_timeout_s)):
            if not v > 0:
                raise RemoteError(Reason.CONFIG, f"{name} must be > 0, got {v!r}", backend=backend)
        if max_retries < 0:
            raise RemoteError(Reason.CONFIG, f"max_retries must be >= 0, got {max_retries!r}", backend=backend)
        self.backend = backend
        self.base_url = base_url.rstrip("/") + "/"
        self._host = urlsplit(self.base_url).netloc
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.secrets = secrets or SecretSource()
        self.timeout = (float(connect_timeout_s), float(read_timeout_s))
        self.max_retries = int(max_retries)
        self.backoff_base_s, self.backoff_max_s = float(backoff_base_s), float(backoff_max_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.error_mapper = error_mapper
        self.key_hint = key_hint
        self.stats = RemoteStats(backend)
        self._requests = requests
        self._session = requests.Session()
        self._session.trust_env = True  # proxies from HTTPS_PROXY etc.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"{backend}-http")
        self._rng = random.Random()

    # ---- low level ------------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        return path_or_url if re.match(r"^https?://", path_or_url) else urljoin(self.base_url, path_or_url.lstrip("/"))

    def _headers_for(self, url: str, extra: dict[str, str] | None) -> dict[str, str]:
        same_host = urlsplit(url).netloc == self._host
        base = self.headers if same_host else {"User-Agent": USER_AGENT}
        return {**base, **(extra or {})} if same_host else dict(base)

    def _send_once(self, method: str, url: str, cancel: CancelToken, *, json_body: Any = None,
                   headers: dict[str, str] | None = None, stream: bool = False):
        """One HTTP exchange (redirects followed by hand), cancellable while in flight."""
        def go():
            target, hops = url, 0
            meth, body = method, json_body
            while True:
                resp = self._session.request(meth, target, json=body, headers=self._headers_for(target, headers),
                                             timeout=self.timeout, allow_redirects=False, stream=stream)
                if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        resp.close()
                        raise RemoteError(Reason.BAD_RESPONSE, f"more than {MAX_REDIRECTS} redirects from {url}",
                                          backend=self.backend)
                    target = urljoin(target, resp.headers["Location"])
                    if resp.status_code == 303 or (resp.status_code in (301, 302) and meth == "POST"):
                        meth, body = "GET", None
                    resp.close()
                    continue
                return resp

        fut = self._pool.submit(go)
        while True:
            try:
                return fut.result(timeout=0.1)
            except FutureTimeout:
                if cancel.is_set():
                    fut.add_done_callback(lambda f: f.exception() is None and f.result().close())
                    check_cancel(cancel, f"{self.backend} request")

    def _backoff(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * (2 ** attempt)))

    def _error_for(self, resp, what: str) -> RemoteError:
        text = resp.text
        try:
            body = resp.json()
        except ValueError:
            body = None
        if self.error_mapper is not None:
            mapped = self.error_mapper(resp.status_code, body, text)
            if mapped is not None:
                mapped.status = mapped.status or resp.status_code
                return self._redacted(mapped)
        msg = _clean(self.secrets.redact(server_message(body, text)))
        s = resp.status_code
        detail = f" ({msg})" if msg else ""
        if s == 401:
            return RemoteError(Reason.AUTH, f"{what}: authentication failed (HTTP 401){detail}; check {self.key_hint}",
                               backend=self.backend, status=s)
        if s == 403:
            return RemoteError(Reason.PERMISSION, f"{what}: permission denied (HTTP 403){detail}; the key may lack "
                               "access to this model or API, or the region is not supported", backend=self.backend,
                               status=s)
        if s == 404:
            return RemoteError(Reason.NOT_FOUND, f"{what}: not found (HTTP 404){detail}", backend=self.backend,
                               status=s)
        if s == 429:
            return RemoteError(Reason.RATE_LIMITED, f"{what}: rate limited (HTTP 429) after {self.max_retries} "
                               f"retries{detail}", backend=self.backend, status=s)
        if s >= 500:
            return RemoteError(Reason.SERVER, f"{what}: server error (HTTP {s}) after {self.max_retries} "
                               f"retries{detail}", backend=self.backend, status=s)
        return RemoteError(Reason.BAD_REQUEST, f"{what}: request rejected (HTTP {s}){detail}",
                           backend=self.backend, status=s)

    def _redacted(self, e: RemoteError) -> RemoteError:
        out = RemoteError(e.reason, _clean(self.secrets.redact(str(e).removeprefix(f"{self.backend}: ")), 500),
                          backend=self.backend, status=e.status)
        return out

    # ---- requests with retries --------------------------------------------------------------------
    def request(self, method: str, path_or_url: str, *, json_body: Any = None, headers: dict[str, str] | None = None,
                cancel: CancelToken = NEVER_CANCELED, what: str = "request", stream: bool = False,
                ok_statuses: tuple[int, ...] = (200, 201, 202), idempotent: bool = True):
        """The response of a successful exchange (status in ``ok_statuses``), retried per the policy above."""
        url = self.url(path_or_url)
        attempt = 0
        while True:
            check_cancel(cancel, what)
            t0 = time.monotonic()
            self.stats.add(calls=1)
            retry_wait: float | None = None
            try:
                resp = self._send_once(method, url, cancel, json_body=json_body, headers=headers, stream=stream)
            except self._requests.exceptions.Timeout as e:
                self.stats.add(seconds=time.monotonic() - t0)
                err = RemoteError(Reason.TIMEOUT, f"{what}: no answer within {self.timeout[1]:g} s "
                                  f"(connect timeout {self.timeout[0]:g} s) after {attempt} retries",
                                  backend=self.backend)
                if not idempotent and not isinstance(e, self._requests.exceptions.ConnectTimeout):
                    self.stats.add(errors=1)
                    raise RemoteError(Reason.TIMEOUT, f"{what}: no answer within {self.timeout[1]:g} s; not retried "
                                      "because the service may have started the job (check its console before "
                                      "retrying, to avoid paying twice)", backend=self.backend) from None
            except self._requests.exceptions.RequestException as e:
                self.stats.add(seconds=time.monotonic() - t0)
                reason = type(e).__name__
                err = RemoteError(Reason.CONNECTION, f"{what}: cannot reach {urlsplit(url).netloc} ({reason}) after "
                                  f"{attempt} retries", backend=self.backend)
                if not idempotent and not isinstance(e, self._requests.exceptions.ConnectionError):
                    self.stats.add(errors=1)
                    raise err from None
            else:
                self.stats.add(seconds=time.monotonic() - t0)
                if resp.status_code in ok_statuses:
                    return resp
                err = self._error_for(resp, what)
                if resp.status_code in RETRY_STATUSES:
                    retry_wait = parse_retry_after(resp.headers.get("Retry-After"))
                resp.close()
                if resp.status_code not in RETRY_STATUSES and err.reason != Reason.RATE_LIMITED:
                    self.stats.add(errors=1)
                    raise err
                if err.reason not in (Reason.RATE_LIMITED, Reason.SERVER):
                    self.stats.add(errors=1)
                    raise err  # a mapper decided this 429/5xx is final (e.g. no credits)
            if attempt >= self.max_retries:
                self.stats.add(errors=1)
                raise err
            if retry_wait is not None and retry_wait > self.max_retry_after_s:
                self.stats.add(errors=1)
                raise RemoteError(err.reason, f"{what}: the service asks to retry after {retry_wait:.0f} s "
                                  f"(more than max_retry_after_s={self.max_retry_after_s:g})", backend=self.backend,
                                  status=err.status)
            wait = retry_wait if retry_wait is not None else self._backoff(attempt)
            attempt += 1
            self.stats.add(retries=1)
            sleep_cancellable(wait, cancel, what)

    def json(self, method: str, path_or_url: str, **kw) -> Any:
        """``request`` and parse a JSON object reply (malformed JSON -> RemoteError(BAD_RESPONSE))."""
        what = kw.get("what", "request")
        resp = self.request(method, path_or_url, **kw)
        try:
            body = resp.json()
        except ValueError:
            self.stats.add(errors=1)
            raise RemoteError(Reason.BAD_RESPONSE, f"{what}: the reply is not valid JSON "
                              f"({_clean(self.secrets.redact(resp.text), 120)!r})", backend=self.backend) from None
        if not isinstance(body, dict):
            self.stats.add(errors=1)
            raise RemoteError(Reason.BAD_RESPONSE, f"{what}: expected a JSON object, got {type(body).__name__}",
                              backend=self.backend)
        return body

    # ---- long-running operations ----------------------------------------------------------------
    def poll(self, fetch: Callable[[], T | None], *, cancel: CancelToken, deadline_s: float, what: str,
             interval_s: float = 2.0, max_interval_s: float = 15.0, progress: ProgressCallback | None = None) -> T:
        """Call ``fetch()`` until it returns non-None, waiting ``interval_s`` (x1.5 each time, capped),
        with a deadline; each wait is cancellable (Canceled within ~0.1 s)."""
        t0 = time.monotonic()
        interval = max(0.05, float(interval_s))
        polls = 0
        while True:
            out = fetch()
            polls += 1
            if out is not None:
                return out
            elapsed = time.monotonic() - t0
            if elapsed >= deadline_s:
                raise RemoteError(Reason.DEADLINE, f"{what} did not finish within {deadline_s:g} s "
                                  f"({polls} polls); raise the backend's deadline_s parameter or retry later",
                                  backend=self.backend)
            if progress is not None:
                progress(int(elapsed), int(deadline_s), f"{what}: waiting ({elapsed:.0f} s, poll {polls})")
            sleep_cancellable(min(interval, max(0.0, deadline_s - elapsed)), cancel, what)
            interval = min(interval * 1.5, max(max_interval_s, interval_s))

    # ---- downloads ----------------------------------------------------------------------------------
    def download(self, url: str, dest: Path | str, *, cancel: CancelToken = NEVER_CANCELED, what: str = "download",
                 validate: Callable[[Path], None] | None = None, max_bytes: int = 2 * 1024 ** 3) -> Path:
        """Stream ``url`` to ``dest`` through a temporary file in the same folder: checked (non-empty,
        Content-Length, ``validate(tmp_path)`` raising on bad content) before the atomic rename."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        resp = self.request("GET", url, cancel=cancel, what=what, stream=True, ok_statuses=(200,))
        tmp = dest.with_name(f".{dest.name}.part{os.getpid()}-{threading.get_ident()}")
        size = 0
        t0 = time.monotonic()
        try:
            expected = int(resp.headers.get("Content-Length", "-1") or -1)
            with open(tmp, "wb") as f:
                for chunk in resp.iter_content(chunk_size=1 << 16):
                    check_cancel(cancel, what)
                    size += len(chunk)
                    if size > max_bytes:
                        raise RemoteError(Reason.BAD_RESPONSE, f"{what}: larger than {max_bytes} bytes",
                                          backend=self.backend)
                    f.write(chunk)
            if size == 0:
                raise RemoteError(Reason.BAD_RESPONSE, f"{what}: the file is empty", backend=self.backend)
            if expected >= 0 and size != expected:
                raise RemoteError(Reason.BAD_RESPONSE, f"{what}: got {size} of {expected} bytes (connection cut?)",
                                  backend=self.backend)
            if validate is not None:
                validate(tmp)
            os.replace(tmp, dest)
        except self._requests.exceptions.RequestException as e:
            raise RemoteError(Reason.CONNECTION, f"{what}: the transfer broke off ({type(e).__name__})",
                              backend=self.backend) from None
        finally:
            resp.close()
            self.stats.add(seconds=time.monotonic() - t0, bytes_downloaded=size)
            if tmp.exists():
                tmp.unlink()
        return dest

    def close(self) -> None:
        self._session.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def dumps_compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)
