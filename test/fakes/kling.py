"""A fake Kling image-to-video API for tests and benchmarks.

Implements the documented shapes: ``POST /v1/videos/image2video`` (``Authorization: Bearer`` with
a JWT HS256 ``{"iss", "exp", "nbf"}`` signed with ``secret_key`` - verified, exp/nbf checked
against ``clock()`` - or the single ``api_key``) -> ``{"code": 0, "data": {"task_id", ...}}``;
``GET /v1/videos/image2video/{task_id}`` -> ``data.task_status`` submitted, processing, then
succeed (``data.task_result.videos[0].url``, a CDN URL that REDIRECTS and refuses requests that
carry an Authorization header, like a signed object store) or failed (``task_status_msg``).
Errors are ``{"code", "message", "request_id"}`` with the documented HTTP statuses
(:func:`kling_error_reply`).

Outcomes per task (``outcome`` or :meth:`script`): ``success``, ``failed_safety``, ``failed``,
``never``, ``missing`` (the CDN URL 404s), ``corrupt``, ``empty``. A task succeeds after
``polls_before_done`` polls AND ``generation_s`` seconds per second of requested video.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from fakes.base import FakeService, Recorded, Reply
from fakes.veo import FakeStorage

KLING_HTTP_STATUS = {1000: 401, 1001: 401, 1002: 401, 1003: 401, 1004: 401, 1100: 429, 1101: 429, 1102: 429,
                     1103: 403, 1200: 400, 1201: 400, 1202: 400, 1203: 404, 1300: 400, 1301: 400, 1302: 429,
                     1303: 429, 1304: 429, 5000: 500, 5001: 503, 5002: 504}
KLING_MESSAGES = {1000: "Authentication failed", 1001: "Authorization is empty", 1002: "Authorization is invalid",
                  1003: "Authorization is not yet valid", 1004: "Authorization has expired",
                  1102: "Account balance not enough or resource pack depleted", 1201: "Invalid request parameters",
                  1301: "Trigger the content security policy of the platform",
                  1302: "The API request is too fast, please slow down", 1303: "Concurrency exceeds the limit",
                  5000: "Server internal error", 5001: "Server temporarily unavailable", 5002: "Server timeout"}
_rid = itertools.count(1)


def kling_error_reply(code: int, message: str | None = None, status: int | None = None, **kw) -> Reply:
    """The reply Kling gives for an error ``code`` (its documented HTTP status unless ``status``)."""
    body = {"code": code, "message": message or KLING_MESSAGES.get(code, "error"), "request_id": f"req{next(_rid)}"}
    return Reply(status or KLING_HTTP_STATUS.get(code, 400), body, **kw)


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@dataclass
class FakeTask:
    id: str
    body: Any
    duration_s: float
    outcome: str
    created: float = field(default_factory=time.monotonic)
    polls: int = 0


class FakeKling(FakeService):
    """The fake service; ``video_bytes``: bytes, or ``callable(task) -> bytes`` per download."""

    def __init__(self, video_bytes: bytes | Callable[[FakeTask], bytes] = b"", *, access_key: str = "test-ak",
                 secret_key: str = "test-sk-0123456789", api_key: str = "", polls_before_done: int = 2,
                 generation_s: float = 0.0, outcome: str = "success", storage: FakeStorage | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__()
        self.video_bytes = video_bytes
        self.access_key, self.secret_key, self.api_key = access_key, secret_key, api_key
        self.polls_before_done = polls_before_done
        self.generation_s = generation_s
        self.outcome = outcome
        self.fail_msg = "Task failed: internal error while rendering"
        self.safety_msg = "Failure to pass the risk control system: the content may be sensitive"
        self.storage = storage
        self.clock = clock
        self.tasks: dict[str, FakeTask] = {}
        self.submissions: list[Any] = []
        self.tokens_accepted: list[str] = []
        self.tokens_rejected: list[tuple[str, int]] = []
        self.cdn_hops: list[dict] = []
        self.expire_next = 0
        """Reject this many more requests as 'token expired' (1004) whatever they carry."""
        self._script: deque[str] = deque()
        self._ids = itertools.count(1)
        self._tasks_lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}

    def script(self, *outcomes: str) -> None:
        with self._tasks_lock:
            self._script.extend(outcomes)

    # ---- auth ----------------------------------------------------------------------------------------
    def verify_jwt(self, token: str) -> int:
        """0 if ``token`` is a valid JWT for this account now, else the Kling error code."""
        parts = token.split(".")
        if len(parts) != 3:
            return 1002
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            sig = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return 1002
        if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
            return 1002
        want = hmac.new(self.secret_key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(sig, want) or claims.get("iss") != self.access_key:
            return 1000
        now = self.clock()
        if not isinstance(claims.get("nbf"), (int, float)) or not isinstance(claims.get("exp"), (int, float)):
            return 1002
        if now < claims["nbf"]:
            return 1003
        if now >= claims["exp"]:
            return 1004
        return 0

    def _auth(self, rec: Recorded) -> Reply | None:
        auth = {k.lower(): v for k, v in rec.headers.items()}.get("authorization", "")
        if not auth:
            return kling_error_reply(1001)
        if not auth.startswith("Bearer "):
            return kling_error_reply(1002)
        token = auth[len("Bearer "):].strip()
        with self._tasks_lock:
            if self.expire_next > 0:
                self.expire_next -= 1
                self.tokens_rejected.append((token, 1004))
                return kling_error_reply(1004)
        code = 0 if self.api_key and token == self.api_key else self.verify_jwt(token)
        with self._tasks_lock:
            if code:
                self.tokens_rejected.append((token, code))
            else:
                self.tokens_accepted.append(token)
        return kling_error_reply(code) if code else None

    # ---- routing ----------------------------------------------------------------------------------------
    def route(self, rec: Recorded) -> Reply:
        p = rec.path
        if p.startswith("/cdn/"):
            return self._cdn(rec)
        denied = self._auth(rec)
        if denied is not None:
            return denied
        if rec.method == "POST" and p == "/v1/videos/image2video":
            return self._submit(rec)
        if rec.method == "GET" and p.startswith("/v1/videos/image2video/"):
            return self._query(p.rsplit("/", 1)[-1])
        return kling_error_reply(1203, f"Resource not found: {rec.method} {p}", status=404)

    def _ok(self, data: dict) -> Reply:
        return Reply(200, {"code": 0, "message": "SUCCEED", "request_id": f"req{next(_rid)}", "data": data})

    def _bad(self, message: str) -> Reply:
        return kling_error_reply(1201, message)

    def _check_b64(self, value: Any, name: str) -> str | None:
        if not isinstance(value, str) or not value:
            return f"{name} is required"
        if value.startswith("data:"):
            return f"{name}: send raw base64 without a data: prefix"
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return f"{name} is neither a URL nor valid base64"
        return None

    def _submit(self, rec: Recorded) -> Reply:
        body = rec.body
        if not isinstance(body, dict):
            return self._bad("request body must be a JSON object")
        if not str(body.get("model_name") or "").startswith("kling-"):
            return self._bad(f"model_name {body.get('model_name')!r} is not supported")
        for name in ("image", "image_tail"):
            if name in body or name == "image":
                problem = self._check_b64(body.get(name), name)
                if problem:
                    return self._bad(problem)
        if len(str(body.get("prompt") or "")) > 2500 or len(str(body.get("negative_prompt") or "")) > 2500:
            return self._bad("prompt and negative_prompt must not exceed 2500 characters")
        if body.get("mode", "std") not in ("std", "pro"):
            return self._bad(f"mode {body.get('mode')!r} is invalid")
        if body.get("duration", "5") not in ("5", "10"):
            return self._bad(f"duration {body.get('duration')!r} is invalid: use \"5\" or \"10\"")
        with self._tasks_lock:
            outcome = self._script.popleft() if self._script else self.outcome
            task = FakeTask(f"{800000000000 + next(self._ids)}", body, float(body.get("duration", "5")), outcome)
            self.tasks[task.id] = task
            self.submissions.append(body)
        now_ms = int(time.time() * 1000)
        return self._ok({"task_id": task.id, "task_status": "submitted", "created_at": now_ms, "updated_at": now_ms})

    def _query(self, task_id: str) -> Reply:
        with self._tasks_lock:
            task = self.tasks.get(task_id)
            if task is None:
                return kling_error_reply(1203, f"task {task_id} not found", status=404)
            task.polls += 1
            ready = (task.polls > self.polls_before_done
                     and time.monotonic() - task.created >= self.generation_s * task.duration_s)
            polls, outcome = task.polls, task.outcome
        data: dict[str, Any] = {"task_id": task_id, "task_status_msg": "", "created_at": 0, "updated_at": 0}
        if outcome == "never" or not ready:
            data["task_status"] = "submitted" if polls <= 1 else "processing"
            return self._ok(data)
        if outcome in ("failed", "failed_safety"):
            data.update(task_status="failed", task_status_msg=self.safety_msg if outcome == "failed_safety"
                        else self.fail_msg)
            return self._ok(data)
        url = f"{self.base_url}/cdn/{task_id}.mp4"
        data.update(task_status="succeed", task_result={"videos": [{"id": f"v{task_id}", "url": url,
                                                                    "duration": str(int(task.duration_s))}]})
        return self._ok(data)

    def _bytes_for(self, task: FakeTask) -> bytes:
        if task.outcome == "corrupt":
            return b"\x00\x00\x00\x18ftypmp42" + b"garbage " * 100
        if task.outcome == "empty":
            return b""
        return self.video_bytes(task) if callable(self.video_bytes) else bytes(self.video_bytes)

    def _cdn(self, rec: Recorded) -> Reply:
        with self._tasks_lock:
            self.cdn_hops.append(dict(rec.headers))
        if any(k.lower() == "authorization" for k in rec.headers):
            return Reply(400, "Only one auth mechanism allowed; the signed URL is the credential")
        if rec.path.startswith("/cdn/blob/"):
            with self._lock:
                data = self._blobs.get(rec.path)
            return Reply(200, data, content_type="video/mp4") if data is not None else Reply(404, "NoSuchKey")
        task_id = rec.path[len("/cdn/"):].removesuffix(".mp4")
        with self._tasks_lock:
            task = self.tasks.get(task_id)
        if task is None or task.outcome == "missing":
            return Reply(404, "NoSuchKey")
        data = self._bytes_for(task)
        path = f"/cdn/blob/{task_id}.mp4"
        if self.storage is not None:
            url = self.storage.put(path, data)
        else:
            with self._lock:
                self._blobs[path] = data
            url = f"{path}?x-sign=fake"
        return Reply(302, b"", headers={"Location": url})
