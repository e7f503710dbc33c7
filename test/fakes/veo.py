"""A fake Veo 3.1 (Gemini API ``predictLongRunning``) for tests and benchmarks.

Implements the documented shapes: ``POST /v1beta/models/{model}:predictLongRunning`` (key in
``x-goog-api-key``) -> ``{"name": "models/{model}/operations/{id}"}``; ``GET /v1beta/{name}`` ->
``{"name", "done": false}`` until the job is ready, then ``response.generateVideoResponse.
generatedSamples[0].video.uri`` = ``{base}/v1beta/files/{id}:download?alt=media``, which needs the
key and REDIRECTS (302) to a storage path (on this server, or on a separate :class:`FakeStorage`
on another port, to check that the key never leaves the API host).

Outcomes per job (``outcome`` attribute, or a queue filled by :meth:`script`): ``success``,
``blocked`` (safety filter: empty samples + raiMediaFilteredCount/Reasons), ``error`` (the
operation's ``error`` = ``op_error``), ``never`` (never done), ``missing`` (the video URL 404s),
``corrupt`` (the download is not a video), ``empty`` (the download has no bytes).
A job is done after ``polls_before_done`` status polls AND ``generation_s`` seconds per second of
requested video since its submission (simulated generation time, poll-based).
"""
from __future__ import annotations

import base64
import binascii
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from fakes.base import FakeService, Recorded, Reply

DEFAULT_OP_ERROR = {"code": 13, "message": "Internal error while generating the video.", "status": "INTERNAL"}
DEFAULT_RAI_REASONS = ["The video could not be generated because the input image may violate our policies "
                       "(support code 17301)."]


def google_error(status: int, message: str, grpc_status: str, details: list | None = None) -> Reply:
    """A Google API error reply."""
    err: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
    if details:
        err["details"] = details
    return Reply(status, {"error": err})


@dataclass
class FakeJob:
    id: str
    model: str
    body: Any
    duration_s: float
    outcome: str
    created: float = field(default_factory=time.monotonic)
    polls: int = 0


class FakeStorage(FakeService):
    """A plain file host (another port): serves blobs put with :meth:`put`; records who asked."""

    def __init__(self):
        super().__init__()
        self.blobs: dict[str, bytes] = {}

    def put(self, path: str, data: bytes) -> str:
        with self._lock:
            self.blobs[path] = data
        return f"{self.base_url}{path}?X-Goog-Signature=fake-signature"

    def route(self, rec: Recorded) -> Reply:
        with self._lock:
            data = self.blobs.get(rec.path)
        if data is None:
            return Reply(404, "no such object")
        return Reply(200, data, content_type="video/mp4")


class FakeVeo(FakeService):
    """The fake service; ``video_bytes``: bytes, or ``callable(job) -> bytes`` per download."""

    def __init__(self, video_bytes: bytes | Callable[[FakeJob], bytes] = b"", *, api_key: str = "test-veo-key",
                 polls_before_done: int = 2, generation_s: float = 0.0, outcome: str = "success",
                 storage: FakeStorage | None = None, reject_inline_data: bool = False):
        super().__init__()
        self.video_bytes = video_bytes
        self.api_key = api_key
        self.polls_before_done = polls_before_done
        self.generation_s = generation_s
        self.outcome = outcome
        self.op_error: dict = dict(DEFAULT_OP_ERROR)
        self.rai_reasons: list[str] = list(DEFAULT_RAI_REASONS)
        self.storage = storage
        self.reject_inline_data = reject_inline_data
        self.jobs: dict[str, FakeJob] = {}
        self.submissions: list[Any] = []
        self.download_hops: list[dict] = []
        """Headers of each request to the files endpoint (the first hop of a download)."""
        self._script: deque[str] = deque()
        self._ids = itertools.count(1)
        self._jobs_lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}

    def script(self, *outcomes: str) -> None:
        """The next jobs get these outcomes, in order (then ``outcome`` again)."""
        with self._jobs_lock:
            self._script.extend(outcomes)

    # ---- routing ----------------------------------------------------------------------------------------
    def _key_ok(self, rec: Recorded) -> Reply | None:
        key = {k.lower(): v for k, v in rec.headers.items()}.get("x-goog-api-key")
        if not key:
            return google_error(403, "Method doesn't allow unregistered callers (callers without established "
                                     "identity). Please use API Key or other form of API consumer identity to call "
                                     "this API.", "PERMISSION_DENIED")
        if key != self.api_key:
            return google_error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT",
                                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}])
        return None

    def route(self, rec: Recorded) -> Reply:
        p = rec.path
        if p.startswith("/storage/"):
            return self._serve_blob(p)
        denied = self._key_ok(rec)
        if denied is not None:
            return denied
        if rec.method == "POST" and p.startswith("/v1beta/models/") and p.endswith(":predictLongRunning"):
            return self._submit(rec, p[len("/v1beta/models/"):-len(":predictLongRunning")])
        if rec.method == "GET" and p.startswith("/v1beta/models/") and "/operations/" in p:
            return self._operation(p[len("/v1beta/"):])
        if rec.method == "GET" and p.startswith("/v1beta/files/") and p.endswith(":download"):
            return self._download(rec, p[len("/v1beta/files/"):-len(":download")])
        return google_error(404, f"Not found: {rec.method} {p}", "NOT_FOUND")

    def _bad(self, message: str) -> Reply:
        return google_error(400, message, "INVALID_ARGUMENT")

    def _check_image(self, img: Any, field_name: str) -> str | None:
        if not isinstance(img, dict):
            return f"{field_name} must be an object"
        if "inlineData" in img:
            if self.reject_inline_data:
                return "`inlineData` isn't supported by this model."
            blob = img["inlineData"]
            data, mime = (blob.get("data"), blob.get("mimeType")) if isinstance(blob, dict) else (None, None)
        else:
            data, mime = img.get("bytesBase64Encoded"), img.get("mimeType")
        if mime not in ("image/png", "image/jpeg", "image/webp"):
            return f"{field_name}: unsupported mimeType {mime!r}"
        try:
            raw = base64.b64decode(data or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            return f"{field_name}: data is not base64"
        if not raw:
            return f"{field_name}: empty image"
        return None

    def _submit(self, rec: Recorded, model: str) -> Reply:
        if not model.startswith("veo-"):
            return google_error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                                     "predictLongRunning.", "NOT_FOUND")
        body = rec.body
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or len(body["instances"]) != 1:
            return self._bad("Invalid JSON payload: expected exactly one instance.")
        inst, params = body["instances"][0], body.get("parameters") or {}
        if not isinstance(inst, dict) or not str(inst.get("prompt") or "").strip():
            return self._bad("instances[0].prompt is required.")
        for name in ("image", "lastFrame"):
            if name in inst:
                problem = self._check_image(inst[name], f"instances[0].{name}")
                if problem:
                    return self._bad(problem)
        if params.get("aspectRatio") not in ("16:9", "9:16"):
            return self._bad(f"Unsupported aspect ratio {params.get('aspectRatio')!r}.")
        if params.get("durationSeconds") not in ("4", "6", "8"):
            return self._bad(f"Unsupported durationSeconds {params.get('durationSeconds')!r}: use 4, 6 or 8.")
        if params.get("resolution", "720p") not in ("720p", "1080p", "4k"):
            return self._bad(f"Unsupported resolution {params.get('resolution')!r}.")
        if params.get("resolution", "720p") != "720p" and params["durationSeconds"] != "8":
            return self._bad("1080p and 4k videos must be 8 seconds long.")
        with self._jobs_lock:
            outcome = self._script.popleft() if self._script else self.outcome
            job = FakeJob(f"op{next(self._ids):04d}", model, body, float(params["durationSeconds"]), outcome)
            self.jobs[job.id] = job
            self.submissions.append(body)
        return Reply(200, {"name": f"models/{model}/operations/{job.id}"})

    def _operation(self, name: str) -> Reply:
        job_id = name.rsplit("/", 1)[-1]
        with self._jobs_lock:
            job = self.jobs.get(job_id)
            if job is None or name != f"models/{job.model}/operations/{job_id}":
                return google_error(404, f"Operation {name} not found.", "NOT_FOUND")
            job.polls += 1
            ready = (job.polls > self.polls_before_done
                     and time.monotonic() - job.created >= self.generation_s * job.duration_s)
            outcome = job.outcome
        if outcome == "never" or not ready:
            return Reply(200, {"name": name, "done": False})
        if outcome == "error":
            return Reply(200, {"name": name, "done": True, "error": dict(self.op_error)})
        kind = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
        if outcome == "blocked":
            return Reply(200, {"name": name, "done": True, "response": {"@type": kind, "generateVideoResponse": {
                "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": list(self.rai_reasons)}}})
        uri = f"{self.base_url}/v1beta/files/{job_id}:download?alt=media"
        return Reply(200, {"name": name, "done": True, "response": {"@type": kind, "generateVideoResponse": {
            "generatedSamples": [{"video": {"uri": uri}}]}}})

    def _bytes_for(self, job: FakeJob) -> bytes:
        if job.outcome == "corrupt":
            return b"\x00\x00\x00\x18ftypmp42" + b"not really a video " * 50
        if job.outcome == "empty":
            return b""
        return self.video_bytes(job) if callable(self.video_bytes) else bytes(self.video_bytes)

    def _download(self, rec: Recorded, job_id: str) -> Reply:
        with self._jobs_lock:
            self.download_hops.append(dict(rec.headers))
            job = self.jobs.get(job_id)
        if job is None or job.outcome == "missing":
            return google_error(404, "File not found (it may have expired).", "NOT_FOUND")
        data = self._bytes_for(job)
        path = f"/storage/videos/{job_id}.mp4"
        if self.storage is not None:
            url = self.storage.put(path, data)
        else:
            with self._lock:
                self._blobs[path] = data
            url = f"{path}?X-Goog-Signature=fake-signature"
        return Reply(302, b"", headers={"Location": url})

    def _serve_blob(self, path: str) -> Reply:
        with self._lock:
            data = self._blobs.get(path)
        if data is None:
            return Reply(404, "no such object")
        return Reply(200, data, content_type="video/mp4")
