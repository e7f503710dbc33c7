"""The Gemini ``generateContent`` REST call, shared by the image backend and the planner.

``POST {base_url}/v1beta/models/{model}:generateContent`` with the key in the ``x-goog-api-key``
header (never in the URL). The reply's ``candidates[0].content.parts`` holds text and
``inlineData`` parts; parts marked ``"thought": true`` are the model's scratch work and are
skipped. A safety block shows up as ``promptFeedback.blockReason`` (the prompt was refused, no
candidates) or as a candidate ``finishReason`` such as ``SAFETY`` / ``IMAGE_SAFETY`` /
``PROHIBITED_CONTENT``: both become ``RemoteError(Reason.CONTENT_BLOCKED)``.
"""
from __future__ import annotations

import re
from typing import Any

from exoactor.progress import NEVER_CANCELED, CancelToken
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.http import RemoteClient, server_message
from exoactor.remote.secrets import SecretSource, load_secret

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
GEMINI_KEY_ENVS = "GEMINI_API_KEY,GOOGLE_API_KEY"
"""Default ``api_key_env`` parameter: the variables the Google SDKs read, in their order."""

BLOCKED_FINISH_REASONS = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})
"""Candidate finish reasons that mean the service's filters refused to produce the content."""

_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


def env_names(api_key_env: str) -> tuple[str, ...]:
    """``"A, B"`` -> ``("A", "B")`` (the ``api_key_env`` parameter format)."""
    return tuple(n.strip() for n in str(api_key_env).split(",") if n.strip())


def quote(text: Any, limit: int = 200) -> str:
    """``text`` as one bounded, printable, quoted line (model output quoted in error messages)."""
    text = re.sub(r"\s+", " ", re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", str(text))).strip()
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def model_path(model: str, backend: str) -> str:
    """The request path for ``model`` (a bare id; a leading ``models/`` is accepted)."""
    m = str(model or "").strip().removeprefix("models/")
    if not _MODEL_RE.match(m):
        raise RemoteError(Reason.CONFIG, f"the model parameter must be a Gemini model id such as "
                          f"'gemini-2.5-flash', got {model!r}", backend=backend)
    return f"v1beta/models/{m}:generateContent"


def _error_details(body: Any) -> tuple[str, str, str]:
    """(status, reason, message) of a Google API error body ("" where absent)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "", "", ""
    reason = ""
    for d in err.get("details") or []:
        if isinstance(d, dict) and d.get("reason"):
            reason = str(d["reason"])
            break
    return str(err.get("status") or ""), reason, str(err.get("message") or "")


def make_error_mapper(backend: str, key_hint: str, secrets: SecretSource):
    """Google-specific error bodies -> RemoteError (None: fall back to the generic status mapping).

    Google answers a rejected key with HTTP 400 ``API_KEY_INVALID`` (not 401) and an unsupported
    region with 400 ``FAILED_PRECONDITION``; a missing model is a 404.
    """
    def mapper(status: int, body: Any, text: str) -> RemoteError | None:
        st, reason, msg = _error_details(body)
        shown = quote(secrets.redact(msg or server_message(body, text)), 200)
        if status == 400 and (reason == "API_KEY_INVALID" or "api key not valid" in msg.lower()):
            return RemoteError(Reason.AUTH, f"the API key was rejected (HTTP 400 {shown}); check {key_hint}",
                               backend=backend, status=status)
        if status == 400 and st == "FAILED_PRECONDITION" and "location" in msg.lower():
            return RemoteError(Reason.PERMISSION, f"the Gemini API is not available here (HTTP 400 {shown})",
                               backend=backend, status=status)
        if status == 404:
            return RemoteError(Reason.NOT_FOUND, f"model not found (HTTP 404 {shown}); check the backend's model "
                               "parameter", backend=backend, status=status)
        return None

    return mapper


def gemini_client(backend: str, *, base_url: str, api_key_env: str, api_key_file: str, connect_timeout_s: float,
                  read_timeout_s: float, max_retries: int, backoff_base_s: float) -> RemoteClient:
    """A RemoteClient for the Gemini API with the key (loaded now: AUTH/CONFIG if missing) in its header."""
    names = env_names(api_key_env)
    key = load_secret(names, api_key_file, what="Gemini API key", backend=backend)
    secrets = SecretSource()
    secrets.add(key)
    hint = f"the key in {' or '.join(names) or 'the api_key_env variables'} (or the api_key_file parameter)"
    if api_key_file:
        hint = f"the key in {api_key_file}"
    return RemoteClient(backend, base_url, headers={"x-goog-api-key": key}, secrets=secrets,
                        connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s,
                        max_retries=max_retries, backoff_base_s=backoff_base_s,
                        error_mapper=make_error_mapper(backend, hint, secrets), key_hint=hint)


def generate_content(client: RemoteClient, model: str, body: dict, *, cancel: CancelToken = NEVER_CANCELED,
                     what: str = "generateContent") -> dict:
    """POST the request ``body`` to ``model`` and return the parsed reply (RemoteError on failure)."""
    return client.json("POST", model_path(model, client.backend), json_body=body, cancel=cancel, what=what)


def block_message(reply: dict) -> str | None:
    """Why the service's filters refused (prompt block or a blocking finish reason), else None."""
    fb = reply.get("promptFeedback")
    if isinstance(fb, dict) and fb.get("blockReason"):
        extra = f" ({quote(fb['blockReasonMessage'])})" if fb.get("blockReasonMessage") else ""
        return f"the request was blocked by the safety filter (promptFeedback.blockReason {fb['blockReason']}){extra}"
    cands = reply.get("candidates")
    if isinstance(cands, list) and cands and isinstance(cands[0], dict):
        fr = str(cands[0].get("finishReason") or "")
        if fr in BLOCKED_FINISH_REASONS:
            extra = f" ({quote(cands[0]['finishMessage'])})" if cands[0].get("finishMessage") else ""
            return f"the answer was blocked by the safety filter (finishReason {fr}){extra}"
    return None


def finish_reason(reply: dict) -> str:
    """``candidates[0].finishReason`` ("" when absent)."""
    cands = reply.get("candidates")
    if isinstance(cands, list) and cands and isinstance(cands[0], dict):
        return str(cands[0].get("finishReason") or "")
    return ""


def answer_parts(reply: dict, *, backend: str, what: str) -> list[dict]:
    """The non-thought parts of ``candidates[0]``.

    CONTENT_BLOCKED when a prompt block is reported (there are no candidates then) or when the
    first candidate has no parts and a blocking finish reason; BAD_RESPONSE when the shape is wrong.
    Callers that find no usable part should still consult :func:`block_message`.
    """
    blocked = block_message(reply)
    cands = reply.get("candidates")
    if not isinstance(cands, list) or not cands or not isinstance(cands[0], dict):
        if blocked:
            raise RemoteError(Reason.CONTENT_BLOCKED, f"{what}: {blocked}", backend=backend)
        raise RemoteError(Reason.BAD_RESPONSE, f"{what}: the reply has no candidates", backend=backend)
    content = cands[0].get("content") or {}
    parts = content.get("parts") if isinstance(content, dict) else None
    if parts is None:
        parts = []
    if not isinstance(parts, list):
        raise RemoteError(Reason.BAD_RESPONSE, f"{what}: candidates[0].content.parts is not a list", backend=backend)
    parts = [p for p in parts if isinstance(p, dict) and not p.get("thought")]
    if not parts and blocked:
        raise RemoteError(Reason.CONTENT_BLOCKED, f"{what}: {blocked}", backend=backend)
    return parts


def text_of(parts: list[dict]) -> str:
    """The text parts joined (thought parts are already excluded by :func:`answer_parts`)."""
    return "".join(str(p["text"]) for p in parts if isinstance(p.get("text"), str))
