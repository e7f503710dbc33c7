"""Kling 3 image-to-video (``/v1/videos/image2video``).

Auth: a JWT (HS256, ``{"iss": access key, "exp": now + jwt_ttl_s, "nbf": now - 5}`` signed with
the secret key) sent as ``Authorization: Bearer`` and renewed before it expires, or a single
bearer key. Submit ``{"model_name", "image": raw base64, "image_tail"?, "prompt" (<= 2500 chars),
"negative_prompt", "mode": "std"|"pro", "duration": "5"|"10"}`` -> ``data.task_id``; poll
``GET /v1/videos/image2video/{task_id}`` until ``data.task_status`` is ``succeed`` (video at
``data.task_result.videos[0].url``, a CDN URL fetched without the auth header) or ``failed``.
Errors ``{"code", "message"}`` (also with HTTP 200) map to reasons by code.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import threading
import time
from pathlib import Path
from typing import Callable

from exoactor.progress import CancelToken, sleep_cancellable
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.http import RemoteClient
from exoactor.remote.secrets import load_secret
from exoactor.video.base import VideoRequest
from exoactor.video.remote_base import InputImage, JobStatus, MAX_DOWNLOAD_BYTES, RemoteJob, RemoteVideoGenerator, \
    clean_text, env_names, remote_parameters, truncate_words

MAX_PROMPT_CHARS = 2500
MODES = ("std", "pro")
_TASK_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_SAFETY = re.compile(r"safety|risk|sensitive|inappropriate|violat|moderat|prohibited", re.IGNORECASE)
_STATE = {"submitted": "queued", "processing": "processing"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(access_key: str, secret_key: str, now: float, ttl_s: float) -> tuple[str, float]:
    """An HS256 JWT for Kling and its expiry time (``now`` + ``ttl_s``)."""
    exp = int(now + ttl_s)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps({"iss": access_key, "exp": exp, "nbf": int(now - 5)}, separators=(",", ":")).encode())
    signing = f"{header}.{payload}"
    sig = hmac.new(secret_key.encode(), signing.encode("ascii"), hashlib.sha256).digest()
    return f"{signing}.{_b64url(sig)}", float(exp)


def kling_error(code: int, message: str, status: int | None = None) -> RemoteError:
    """The RemoteError for a Kling error code (``message`` as the service gave it, cleaned by the caller)."""
    what = f"Kling error {code}: {message or 'no message'}"
    if 1000 <= code <= 1004:
        return RemoteError(Reason.AUTH, f"{what}; check KLING_ACCESS_KEY/KLING_SECRET_KEY (or KLING_API_KEY) and "
                           "this machine's clock (the token's nbf/exp)", status=status)
    if code in (1100, 1101, 1102):
        return RemoteError(Reason.QUOTA, f"{what}; the Kling account has no usable credits or resource pack: "
                           "top it up or renew it", status=status)
    if code in (1103, 1300, 1304):
        return RemoteError(Reason.PERMISSION, f"{what}; the account may not use this model or feature (or this IP)",
                           status=status)
    if code == 1301:
        return RemoteError(Reason.CONTENT_BLOCKED, f"{what}; Kling's content safety refused the request: rephrase "
                           "the step's prompt or use another start image", status=status)
    if code in (1302, 1303):
        return RemoteError(Reason.RATE_LIMITED, f"{what}; too many requests or tasks at once: retry later or "
                           "lower kling.max_concurrent", status=status)
    if 1200 <= code <= 1299:
        return RemoteError(Reason.BAD_REQUEST, f"{what}; check the prompt, the images and the kling parameters",
                           status=status)
    if 5000 <= code <= 5099:
        return RemoteError(Reason.SERVER, f"{what}; a Kling service problem: retry later", status=status)
    return RemoteError(Reason.FAILED, what, status=status)


def _code_of(body) -> int | None:
    if not isinstance(body, dict) or "code" not in body:
        return None
    try:
        return int(body["code"])
    except (TypeError, ValueError):
        return None


def _error_mapper(status: int, body, _text: str) -> RemoteError | None:
    code = _code_of(body)
    if code is None or code == 0:
        return None
    return kling_error(code, str(body.get("message") or ""), status)


class KlingVideoGenerator(RemoteVideoGenerator):
    """Kling (``kling-v3``) image-to-video, one task per step."""

    name = "kling"
    label = "Kling"
    DURATIONS_S = (5, 10)
    MAX_IMAGE_BYTES = 10 * 1024 ** 2
    PARAMETERS = remote_parameters(
        {"base_url": "https://api-singapore.klingai.com", "model": "kling-v3", "api_key_env": "KLING_API_KEY",
         "deadline_s": 900.0, "poll_interval_s": 5.0},
        {"access_key_env": ("KLING_ACCESS_KEY", "environment variable(s) holding the access key (JWT auth)"),
         "secret_key_env": ("KLING_SECRET_KEY", "environment variable(s) holding the secret key (JWT auth)"),
         "access_key_file": ("", "file whose first line is the access key ('' = unset)"),
         "secret_key_file": ("", "file whose first line is the secret key ('' = unset)"),
         "mode": ("std", "std or pro (pro: better quality, more credits; an end image may need pro)"),
         "jwt_ttl_s": (1800, "lifetime of each JWT (s); renewed before it expires")})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mode = str(self.opts["mode"]).strip()
        self.jwt_ttl_s = int(self.opts["jwt_ttl_s"])  # type: ignore[call-overload]
        if self.mode not in MODES and not self._config_error:
            self._config_error = f"parameter kling.mode must be std or pro, got {self.mode!r}"
        if self.jwt_ttl_s < 10 and not self._config_error:
            self._config_error = f"parameter kling.jwt_ttl_s must be >= 10, got {self.jwt_ttl_s}"
        self._clock: Callable[[], float] = time.time
        self._ak = self._sk = self._bearer_key = ""
        self._token, self._token_exp = "", 0.0
        self._token_lock = threading.Lock()
        self._rng = random.Random()
        self._download_client: RemoteClient | None = None

    # ---- credentials ----------------------------------------------------------------------------------
    def _make_client(self) -> RemoteClient:
        o = self.opts
        key_file = str(o["api_key_file"])
        ak = sk = ""
        if not key_file:
            ak = load_secret(env_names(str(o["access_key_env"])), str(o["access_key_file"]),
                             what="Kling access key", backend=self.name, required=False)
            sk = load_secret(env_names(str(o["secret_key_env"])), str(o["secret_key_file"]),
                             what="Kling secret key", backend=self.name, required=False)
        if bool(ak) != bool(sk):
            missing = "secret key (KLING_SECRET_KEY or kling.secret_key_file)" if ak else \
                "access key (KLING_ACCESS_KEY or kling.access_key_file)"
            raise RemoteError(Reason.AUTH, f"only half of the Kling key pair is set: the {missing} is missing",
                              backend=self.name)
        bearer = ""
        if not ak:
            bearer = load_secret(env_names(str(o["api_key_env"])), key_file, what="Kling API key", backend=self.name,
                                 required=False)
            if not bearer:
                raise RemoteError(Reason.AUTH, "no Kling credentials: set KLING_ACCESS_KEY and KLING_SECRET_KEY "
                                  "(or the kling.access_key_file / secret_key_file parameters), or KLING_API_KEY "
                                  "(or kling.api_key_file)", backend=self.name)
        self.secrets.add(sk)
        self.secrets.add(bearer)
        self._ak, self._sk, self._bearer_key = ak, sk, bearer
        hint = "the Kling keys (KLING_ACCESS_KEY/KLING_SECRET_KEY or KLING_API_KEY)"
        client = self._new_client(error_mapper=_error_mapper, key_hint=hint)
        # The result is a CDN URL: fetched by a client that has no auth header at all.
        self._download_client = self._new_client(key_hint=hint)
        return client

    def _bearer(self, renew: bool = False) -> str:
        """The current token: the bearer key, or a JWT renewed when min(300 s, a fifth of its life) is left."""
        if self._bearer_key:
            return self._bearer_key
        with self._token_lock:
            now = self._clock()
            margin = min(300.0, self.jwt_ttl_s / 5)
            if renew or not self._token or now >= self._token_exp - margin:
                self._token, self._token_exp = make_jwt(self._ak, self._sk, now, self.jwt_ttl_s)
                self.secrets.add(self._token)
            return self._token

    def _call(self, client: RemoteClient, method: str, path: str, cancel: CancelToken, what: str,
              body: dict | None = None, idempotent: bool = True) -> dict:
        """A JSON call with the auth header; codes != 0 in a 200 reply are errors too (rate limits retried);
        a rejected JWT is renewed and tried once more."""
        attempt, renewed, renew_now = 0, False, False
        while True:
            headers = {"Authorization": f"Bearer {self._bearer(renew=renew_now)}"}
            renew_now = False
            try:
                reply = client.json(method, path, json_body=body, headers=headers, cancel=cancel, what=what,
                                    idempotent=idempotent)
            except RemoteError as e:
                if e.reason == Reason.AUTH and not self._bearer_key and not renewed:
                    renewed = renew_now = True  # expired or not yet valid (clock skew): one fresh token
                    continue
                raise
            code = _code_of(reply)
            if code is None or code == 0:
                data = reply.get("data")
                if not isinstance(data, dict):
                    raise self._error(Reason.BAD_RESPONSE, f"{what}: the reply has no 'data' object")
                return data
            err = kling_error(code, clean_text(reply.get("message") or ""), 200)
            if err.reason in (Reason.RATE_LIMITED, Reason.SERVER) and attempt < client.max_retries:
                wait = self._rng.uniform(0.0, min(client.backoff_max_s, client.backoff_base_s * 2 ** attempt))
                attempt += 1
                self._stats.add(retries=1)
                sleep_cancellable(wait, cancel, what)
                continue
            if err.reason == Reason.AUTH and not self._bearer_key and not renewed:
                renewed = renew_now = True
                continue
            self._stats.add(errors=1)
            raise self._error(err.reason, f"{what}: {err}", status=200)

    # ---- the job ----------------------------------------------------------------------------------------
    def _job_params(self, request: VideoRequest, start: InputImage, end: InputImage | None, prompt: str,
                    video_s: int, notes: list[str]) -> dict:
        params = {"model_name": self.model, "mode": self.mode, "duration": str(video_s)}
        if self.negative_prompt:
            params["negative_prompt"] = truncate_words(self.negative_prompt, MAX_PROMPT_CHARS)
        return params

    def prompt_for(self, request: VideoRequest) -> str:
        return truncate_words(super().prompt_for(request), MAX_PROMPT_CHARS)

    def body(self, job: RemoteJob) -> dict:
        """The image2video request body of ``job``."""
        body = {"model_name": job.params["model_name"], "image": job.start.b64}
        if job.end is not None:
            body["image_tail"] = job.end.b64
        body["prompt"] = job.prompt
        if "negative_prompt" in job.params:
            body["negative_prompt"] = job.params["negative_prompt"]
        body["mode"] = job.params["mode"]
        body["duration"] = job.params["duration"]
        return body

    def _submit(self, client: RemoteClient, job: RemoteJob, cancel: CancelToken) -> str:
        what = f"Kling request ({self.model})"
        data = self._call(client, "POST", "v1/videos/image2video", cancel, what, self.body(job), idempotent=False)
        task_id = str(data.get("task_id") or "")
        if not _TASK_ID.fullmatch(task_id):
            raise self._error(Reason.BAD_RESPONSE, f"{what}: the reply has no valid data.task_id")
        return task_id

    def _check(self, client: RemoteClient, job_id: str, cancel: CancelToken) -> JobStatus:
        data = self._call(client, "GET", f"v1/videos/image2video/{job_id}", cancel, "Kling task status")
        status = str(data.get("task_status") or "")
        if status == "succeed":
            result = data.get("task_result")
            videos = result.get("videos") if isinstance(result, dict) else None
            url = videos[0].get("url") if isinstance(videos, list) and videos and isinstance(videos[0], dict) else None
            if not isinstance(url, str) or not url:
                raise self._error(Reason.BAD_RESPONSE, f"Kling task {job_id} succeeded but gives no video url")
            return JobStatus("done", url)
        if status == "failed":
            msg = clean_text(data.get("task_status_msg") or "no reason given")
            if _SAFETY.search(msg):
                raise self._error(Reason.CONTENT_BLOCKED, f"Kling task {job_id} was blocked: {msg!r}; rephrase the "
                                  "step's prompt or use another start image")
            raise self._error(Reason.FAILED, f"Kling task {job_id} failed: {msg!r}; retry the step")
        if not status:
            raise self._error(Reason.BAD_RESPONSE, f"Kling task {job_id}: the status reply has no task_status")
        return JobStatus(_STATE.get(status, status[:40]))

    def _download(self, client: RemoteClient, url: str, dest: Path, cancel: CancelToken,
                  validate: Callable[[Path], None]) -> None:
        dl = self._download_client or client
        dl.download(url, dest, cancel=cancel, what="Kling video download", validate=validate,
                    max_bytes=MAX_DOWNLOAD_BYTES)

    def close(self) -> None:
        super().close()
        if self._download_client is not None:
            self._download_client.close()
            self._download_client = None
