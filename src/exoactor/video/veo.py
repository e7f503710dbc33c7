"""Veo 3.1 image-to-video over the Gemini API's REST interface (``predictLongRunning``).

``POST {base_url}/v1beta/models/{model}:predictLongRunning`` with the key in ``x-goog-api-key``;
body ``{"instances": [{"prompt", "image": {"inlineData": {"mimeType", "data"}}, "lastFrame"?}],
"parameters": {"aspectRatio", "durationSeconds": "4"|"6"|"8", "resolution", "personGeneration",
"negativePrompt", "sampleCount": 1}}`` -> an operation ``name``; ``GET {base_url}/v1beta/{name}``
until ``done``; the video is ``response.generateVideoResponse.generatedSamples[0].video.uri``,
downloaded with the key header (sent to the API host only, never to a redirect target elsewhere).
Veo returns 24 fps mp4s; the frame rate is read from the file.
"""
from __future__ import annotations

import re

from exoactor.progress import CancelToken
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.http import RemoteClient, server_message
from exoactor.remote.secrets import load_secret
from exoactor.video.base import VideoRequest
from exoactor.video.remote_base import InputImage, JobStatus, RemoteJob, RemoteVideoGenerator, clean_text, \
    env_names, remote_parameters

RESOLUTIONS = ("720p", "1080p", "4k")
IMAGE_ENCODINGS = ("inlineData", "bytesBase64Encoded")
_OP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]*")
_SAFETY = re.compile(r"safety|usage guidelines|responsible ai|\brai\b|blocked|filtered|sensitive|prohibited",
                     re.IGNORECASE)
# google.rpc.Code numbers and their names / HTTP equivalents -> reasons (an operation's ``error``).
_GRPC_REASON = {3: Reason.BAD_REQUEST, 5: Reason.NOT_FOUND, 7: Reason.PERMISSION, 8: Reason.RATE_LIMITED,
                9: Reason.BAD_REQUEST, 11: Reason.BAD_REQUEST, 13: Reason.SERVER, 14: Reason.SERVER,
                16: Reason.AUTH}
_HTTP_REASON = {400: Reason.BAD_REQUEST, 401: Reason.AUTH, 403: Reason.PERMISSION, 404: Reason.NOT_FOUND,
                429: Reason.RATE_LIMITED, 500: Reason.SERVER, 502: Reason.SERVER, 503: Reason.SERVER,
                504: Reason.SERVER}
_STATUS_REASON = {"INVALID_ARGUMENT": Reason.BAD_REQUEST, "FAILED_PRECONDITION": Reason.BAD_REQUEST,
                  "OUT_OF_RANGE": Reason.BAD_REQUEST, "NOT_FOUND": Reason.NOT_FOUND,
                  "PERMISSION_DENIED": Reason.PERMISSION, "UNAUTHENTICATED": Reason.AUTH,
                  "RESOURCE_EXHAUSTED": Reason.RATE_LIMITED, "INTERNAL": Reason.SERVER,
                  "UNAVAILABLE": Reason.SERVER}
_HINT = {Reason.BAD_REQUEST: "check the prompt, the images and the veo parameters",
         Reason.NOT_FOUND: "check the veo.model parameter",
         Reason.PERMISSION: "the key may lack access to Veo, or the region is not supported",
         Reason.AUTH: "check the API key",
         Reason.QUOTA: "the key's quota is used up: check the plan and billing, or retry later",
         Reason.RATE_LIMITED: "too many requests: retry later or lower veo.max_concurrent",
         Reason.SERVER: "a Veo service problem: retry later",
         Reason.CONTENT_BLOCKED: "rephrase the step's prompt or use another start image",
         Reason.FAILED: "retry the step; if it keeps failing try another model"}


def _google_error(status: int, body, text: str) -> RemoteError | None:
    """Google error bodies the generic mapping gets wrong: a rejected key is a 400, a region block too."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None
    msg = str(err.get("message") or "")
    reasons = {str(d.get("reason")) for d in err.get("details") or [] if isinstance(d, dict)}
    if status == 400 and ("API_KEY_INVALID" in reasons or "api key not valid" in msg.lower()):
        return RemoteError(Reason.AUTH, f"the API key was rejected ({msg}); check GEMINI_API_KEY / GOOGLE_API_KEY "
                           "or the veo.api_key_file parameter", status=status)
    if status == 400 and "location is not supported" in msg.lower():
        return RemoteError(Reason.PERMISSION, f"Veo is not available here ({msg})", status=status)
    return None


class VeoVideoGenerator(RemoteVideoGenerator):
    """Veo 3.1 (``veo-3.1-generate-preview``, also the -fast-/-lite- ids) image-to-video, one job per step."""

    name = "veo"
    label = "Veo"
    DURATIONS_S = (4, 6, 8)
    PARAMETERS = remote_parameters(
        {"base_url": "https://generativelanguage.googleapis.com", "model": "veo-3.1-generate-preview",
         "api_key_env": "GEMINI_API_KEY,GOOGLE_API_KEY", "deadline_s": 600.0, "poll_interval_s": 5.0},
        {"resolution": ("720p", "output resolution: 720p, 1080p or 4k (1080p and 4k are 8 s videos only)"),
         "person_generation": ("allow_adult", "personGeneration (image-to-video allows 'allow_adult' only)"),
         "image_encoding": ("inlineData", "how images are sent: inlineData (documented) or bytesBase64Encoded; "
                                          "switches by itself when the service rejects inlineData")})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.resolution = str(self.opts["resolution"]).strip().lower()
        self.person_generation = str(self.opts["person_generation"]).strip()
        self.image_encoding = str(self.opts["image_encoding"]).strip()
        if self.resolution not in RESOLUTIONS and not self._config_error:
            self._config_error = (f"parameter veo.resolution must be one of {', '.join(RESOLUTIONS)}, "
                                  f"got {self.resolution!r}")
        if self.image_encoding not in IMAGE_ENCODINGS and not self._config_error:
            self._config_error = (f"parameter veo.image_encoding must be one of {', '.join(IMAGE_ENCODINGS)}, "
                                  f"got {self.image_encoding!r}")

    def _make_client(self) -> RemoteClient:
        key = self.secrets.add(load_secret(env_names(str(self.opts["api_key_env"])), str(self.opts["api_key_file"]),
                                           what="Gemini API key", backend=self.name))
        return self._new_client(headers={"x-goog-api-key": key}, error_mapper=_google_error,
                                key_hint="the API key (GEMINI_API_KEY / GOOGLE_API_KEY or veo.api_key_file)")

    def video_seconds(self, duration_s: float) -> tuple[int, list[str]]:
        seconds, notes = super().video_seconds(duration_s)
        if self.resolution != "720p" and seconds != 8:
            return 8, notes + [f"{self.resolution} videos are 8 s long"]
        return seconds, notes

    def _job_params(self, request: VideoRequest, start: InputImage, end: InputImage | None, prompt: str,
                    video_s: int, notes: list[str]) -> dict:
        params = {"aspectRatio": "16:9" if start.width >= start.height else "9:16",
                  "durationSeconds": str(video_s), "resolution": self.resolution,
                  "personGeneration": self.person_generation}
        if self.negative_prompt:
            params["negativePrompt"] = self.negative_prompt
        params["sampleCount"] = 1
        return params

    def _image(self, img: InputImage, encoding: str) -> dict:
        if encoding == "bytesBase64Encoded":
            return {"bytesBase64Encoded": img.b64, "mimeType": img.mime}
        return {"inlineData": {"mimeType": img.mime, "data": img.b64}}

    def body(self, job: RemoteJob, encoding: str | None = None) -> dict:
        """The predictLongRunning request body of ``job``."""
        enc = encoding or self.image_encoding
        instance = {"prompt": job.prompt, "image": self._image(job.start, enc)}
        if job.end is not None:
            instance["lastFrame"] = self._image(job.end, enc)
        return {"instances": [instance], "parameters": dict(job.params)}

    def _submit(self, client: RemoteClient, job: RemoteJob, cancel: CancelToken) -> str:
        path = f"v1beta/models/{self.model}:predictLongRunning"
        what = f"Veo request ({self.model})"
        try:
            reply = client.json("POST", path, json_body=self.body(job), cancel=cancel, what=what,
                                idempotent=False)
        except RemoteError as e:
            # Some Veo versions take only bytesBase64Encoded images: switch once, for good.
            if not (e.reason == Reason.BAD_REQUEST and "inlinedata" in str(e).lower()
                    and self.image_encoding == "inlineData"):
                raise
            self.image_encoding = "bytesBase64Encoded"
            reply = client.json("POST", path, json_body=self.body(job), cancel=cancel, what=what,
                                idempotent=False)
        name = reply.get("name")
        if not isinstance(name, str) or not _OP_NAME.fullmatch(name) or ".." in name:
            raise self._error(Reason.BAD_RESPONSE, f"{what}: the reply has no valid operation name "
                              f"(keys: {', '.join(sorted(reply)) or 'none'})")
        return name

    def _check(self, client: RemoteClient, job_id: str, cancel: CancelToken) -> JobStatus:
        op = client.json("GET", f"v1beta/{job_id}", cancel=cancel, what="Veo operation status")
        if op.get("error"):
            raise self._operation_error(op["error"], job_id)
        if not op.get("done"):
            return JobStatus("processing")
        resp = op.get("response")
        gvr = resp.get("generateVideoResponse") if isinstance(resp, dict) else None
        if not isinstance(gvr, dict):
            raise self._error(Reason.BAD_RESPONSE, f"operation {job_id} finished without a generateVideoResponse")
        samples = gvr.get("generatedSamples") or []
        if not samples:
            count = gvr.get("raiMediaFilteredCount") or 0
            reasons = [str(r) for r in gvr.get("raiMediaFilteredReasons") or []]
            if count or reasons:
                why = clean_text("; ".join(reasons)) or f"{count} video(s) filtered"
                raise self._error(Reason.CONTENT_BLOCKED, f"Veo's safety filter blocked the video ({why}); "
                                  f"{_HINT[Reason.CONTENT_BLOCKED]}")
            raise self._error(Reason.BAD_RESPONSE, f"operation {job_id} finished without a video")
        sample = samples[0] if isinstance(samples[0], dict) else {}
        video = sample.get("video") if isinstance(sample.get("video"), dict) else {}
        uri = video.get("uri")
        if not isinstance(uri, str) or not uri:
            raise self._error(Reason.BAD_RESPONSE, f"operation {job_id} finished but its sample has no video uri")
        return JobStatus("done", uri)

    def _operation_error(self, err, job_id: str) -> RemoteError:
        if not isinstance(err, dict):
            err = {"message": str(err)}
        code, status = err.get("code"), str(err.get("status") or "")
        msg = str(server_message({"error": err}, "") or "no message")
        reason = _STATUS_REASON.get(status) or (_HTTP_REASON.get(code) if isinstance(code, int) and code >= 100
                                                else _GRPC_REASON.get(code)) or Reason.FAILED
        if reason == Reason.RATE_LIMITED and "quota" in msg.lower():
            reason = Reason.QUOTA
        if reason in (Reason.BAD_REQUEST, Reason.FAILED) and _SAFETY.search(msg):
            reason = Reason.CONTENT_BLOCKED
        tag = ", ".join(str(x) for x in (code, status) if x not in (None, ""))
        text = clean_text(msg)
        return self._error(reason, f"Veo job {job_id} failed: {text}{f' ({tag})' if tag else ''}; {_HINT[reason]}")
