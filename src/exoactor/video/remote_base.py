"""What the remote image-to-video backends (Veo, Kling) share.

One segment = submit a job (start image, optional end image, prompt, parameters), poll it until
it is done (cancellable, with a deadline), download the mp4 (checked: it decodes, has frames of a
sane size) and keep its original bytes as ``segment_XX.mp4`` plus its last decoded frame as
``segment_XX_last.png``. Results are cached by (start image hash, end image hash, prompt, model,
parameters), so a re-run does not pay twice. A subclass says how to build, submit and poll a job.

Start image: ``request.start_image_path`` (chaining: the last frame of the previous segment) if
set, else ``request.reference_image_path``.
"""
from __future__ import annotations

import abc
import base64
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from exoactor.planning.rules import prompt_for
from exoactor.progress import CancelToken, ProgressCallback, check_cancel
from exoactor.remote.cache import ResultCache, cache_key
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.http import ErrorMapper, RemoteClient, RemoteStats
from exoactor.remote.params import CONNECTION_PARAMETERS, ParameterSpec, parameters
from exoactor.remote.secrets import SecretSource
from exoactor.video.base import VideoGenerator, VideoRequest, VideoSegment
from exoactor.video.io import (
    VideoReadError,
    read_video_frames,
    video_info,
    write_image_rgb,
)

DEFAULT_NEGATIVE_PROMPT = ("camera movement, zoom, scene cut, blurry, distorted body, extra limbs, morphing, "
                           "text, watermark")
MIN_SIDE_PX, MAX_SIDE_PX = 16, 8192
"""A downloaded video whose frames are smaller or larger than this is rejected as broken."""
MAX_DOWNLOAD_BYTES = 512 * 1024 ** 2

COMMON_PARAMETERS: ParameterSpec = {
    **CONNECTION_PARAMETERS,
    "deadline_s": (600.0, "give up on a generation job that has not finished after this many seconds"),
    "poll_interval_s": (5.0, "first wait between status polls of a job (s); grows x1.5 per poll"),
    "max_poll_interval_s": (15.0, "longest wait between status polls (s)"),
    "max_concurrent": (2, "segments generated at once by this backend"),
    "negative_prompt": (DEFAULT_NEGATIVE_PROMPT, "what the video should not show ('' = none)"),
}


def remote_parameters(overrides: dict[str, object], extra: ParameterSpec | None = None) -> ParameterSpec:
    """COMMON_PARAMETERS (connection + video job options) with per-backend defaults plus ``extra`` keys."""
    return parameters(COMMON_PARAMETERS, overrides, extra)


def env_names(value: str) -> tuple[str, ...]:
    """'A, B' -> ('A', 'B')."""
    return tuple(n.strip() for n in str(value).split(",") if n.strip())


def _coerce(key: str, default: object, value: object) -> object:
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if value.strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return bool(value)
    if isinstance(default, int):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return int(value)  # type: ignore[arg-type]
    if isinstance(default, float):
        return float(value)  # type: ignore[arg-type]
    return "" if value is None else str(value)


# ---- input images ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputImage:
    """An image as sent to a service: its bytes (PNG or JPEG), MIME type, size and content hash."""

    path: Path
    data: bytes
    mime: str
    width: int
    height: int
    sha256: str

    @property
    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def load_input_image(path: Path | str, role: str, backend: str, max_bytes: int = 20 * 1024 ** 2) -> InputImage:
    """Read and check an image to send (PNG/JPEG kept as is, anything else re-encoded as PNG)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RemoteError(Reason.CONFIG, f"cannot read the {role} {path}: {e.strerror or e}", backend=backend) from None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if arr is None:
        raise RemoteError(Reason.CONFIG, f"the {role} {path} is not a readable image", backend=backend)
    h, w = arr.shape[:2]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        mime = "image/png"
    elif data[:3] == b"\xff\xd8\xff":
        mime = "image/jpeg"
    else:
        ok, buf = cv2.imencode(".png", arr)
        if not ok:
            raise RemoteError(Reason.CONFIG, f"cannot re-encode the {role} {path} as PNG", backend=backend)
        data, mime = buf.tobytes(), "image/png"
    if len(data) > max_bytes:  # a photo saved as a huge PNG: JPEG is far smaller and fine for a start frame
        ok, buf = cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok or len(buf) > max_bytes:
            raise RemoteError(Reason.CONFIG, f"the {role} {path} is larger than {max_bytes // 1024 ** 2} MB even "
                              "as JPEG; use a smaller image", backend=backend)
        data, mime = buf.tobytes(), "image/jpeg"
    return InputImage(path, data, mime, int(w), int(h), hashlib.sha256(data).hexdigest())


def clean_text(text: object, limit: int = 300) -> str:
    """Server text for a one-line message: control characters and runs of spaces squeezed, bounded."""
    out = re.sub(r"[\x00-\x20\x7f]+", " ", str(text)).strip()
    return out if len(out) <= limit else out[: limit - 3] + "..."


def truncate_words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary (hard cut for one long word)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    cut = head.rsplit(None, 1)[0] if any(c.isspace() for c in head) else head
    return cut[:limit].rstrip(" ,;:-")


# ---- jobs --------------------------------------------------------------------------------------------
@dataclass
class RemoteJob:
    """One generation as submitted: inputs, the parameters that shape the output, the seconds asked for."""

    prompt: str
    start: InputImage
    end: InputImage | None
    params: dict
    video_s: int
    notes: list[str] = field(default_factory=list)


@dataclass
class JobStatus:
    """A poll's answer: ``state`` for people (queued, processing, done) and the result URL when done."""

    state: str
    url: str | None = None


@dataclass
class _Decoded:
    fps: float
    frames: int
    width: int
    height: int
    last: np.ndarray


class RemoteVideoGenerator(VideoGenerator, abc.ABC):
    """Base of remote image-to-video backends; subclasses implement the service's protocol."""

    name = "remote"
    label = "Remote"
    """Service name for messages ("Veo", "Kling")."""
    PARAMETERS = remote_parameters({})
    MAX_IMAGE_BYTES = 20 * 1024 ** 2
    DURATIONS_S: tuple[int, ...] = ()
    """Video lengths the service offers (seconds, ascending)."""

    def __init__(self, **kwargs):
        self._config_error = ""
        opts: dict[str, object] = {}
        for key, (default, _desc) in self.PARAMETERS.items():
            try:
                opts[key] = _coerce(key, default, kwargs.get(key, default))
            except (TypeError, ValueError) as e:
                self._config_error = self._config_error or f"parameter {self.name}.{e}"
                opts[key] = default
        self.opts = opts
        self.base_url = str(opts["base_url"]).strip()
        self.model = str(opts["model"]).strip()
        self.deadline_s = float(opts["deadline_s"])  # type: ignore[arg-type]
        self.poll_interval_s = float(opts["poll_interval_s"])  # type: ignore[arg-type]
        self.max_poll_interval_s = float(opts["max_poll_interval_s"])  # type: ignore[arg-type]
        self.negative_prompt = str(opts["negative_prompt"]).strip()
        self.max_concurrency = max(1, int(opts["max_concurrent"]))  # type: ignore[call-overload]
        checks = [(self.deadline_s > 0, f"deadline_s must be > 0, got {self.deadline_s:g}"),
                  (self.poll_interval_s > 0, f"poll_interval_s must be > 0, got {self.poll_interval_s:g}"),
                  (float(opts["backoff_base_s"]) >= 0, "backoff_base_s must be >= 0"),  # type: ignore[arg-type]
                  (int(opts["max_concurrent"]) >= 1, "max_concurrent must be >= 1"),  # type: ignore[call-overload]
                  (bool(self.model), "model must not be empty")]
        for ok, msg in checks:
            if not ok and not self._config_error:
                self._config_error = f"parameter {self.name}.{msg}"
        self.cache = ResultCache(str(opts["cache_dir"]).strip(), self.name)
        self.secrets = SecretSource()
        self._stats = RemoteStats(self.name)
        self._client: RemoteClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # ---- subclass protocol --------------------------------------------------------------------------
    @abc.abstractmethod
    def _make_client(self) -> RemoteClient:
        """Load the credentials and build the client (RemoteError(AUTH/CONFIG) when they are missing)."""

    @abc.abstractmethod
    def _job_params(self, request: VideoRequest, start: InputImage, end: InputImage | None, prompt: str,
                    video_s: int, notes: list[str]) -> dict:
        """Everything besides the images and the prompt that is sent and shapes the output (the cache key)."""

    @abc.abstractmethod
    def _submit(self, client: RemoteClient, job: RemoteJob, cancel: CancelToken) -> str:
        """Start the job; its id."""

    @abc.abstractmethod
    def _check(self, client: RemoteClient, job_id: str, cancel: CancelToken) -> JobStatus:
        """One status poll; raises RemoteError when the job failed."""

    def _download(self, client: RemoteClient, url: str, dest: Path, cancel: CancelToken,
                  validate: Callable[[Path], None]) -> None:
        client.download(url, dest, cancel=cancel, what=f"{self.label} video download", validate=validate,
                        max_bytes=MAX_DOWNLOAD_BYTES)

    # ---- helpers for subclasses -----------------------------------------------------------------------
    def _new_client(self, *, headers: dict[str, str] | None = None, error_mapper: ErrorMapper | None = None,
                    key_hint: str = "the API key") -> RemoteClient:
        o = self.opts
        client = RemoteClient(self.name, self.base_url, headers=headers, secrets=self.secrets,
                              connect_timeout_s=float(o["connect_timeout_s"]),  # type: ignore[arg-type]
                              read_timeout_s=float(o["read_timeout_s"]),  # type: ignore[arg-type]
                              max_retries=int(o["max_retries"]),  # type: ignore[call-overload]
                              backoff_base_s=float(o["backoff_base_s"]),  # type: ignore[arg-type]
                              error_mapper=error_mapper, key_hint=key_hint)
        client.stats = self._stats  # one account per backend, whatever client made the call
        return client

    def _error(self, reason: str, message: str, status: int | None = None) -> RemoteError:
        return RemoteError(reason, self.secrets.redact(message), backend=self.name, status=status)

    def video_seconds(self, duration_s: float) -> tuple[int, list[str]]:
        """The shortest offered length that covers ``duration_s`` (else the longest, with a note)."""
        for d in self.DURATIONS_S:
            if d + 1e-6 >= duration_s:
                return d, []
        longest = self.DURATIONS_S[-1]
        return longest, [f"the step lasts {duration_s:g} s but {self.label} makes at most {longest} s"]

    def prompt_for(self, request: VideoRequest) -> str:
        step = request.step
        if step.prompt.strip():
            return step.prompt.strip()

        return prompt_for(step.action, step.side, step.amount, step.amount_unit, step.direction)

    # ---- the generation ---------------------------------------------------------------------------
    def stats(self) -> dict:
        return self._stats.as_dict()

    def _get_client(self) -> RemoteClient:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def generate(self, request: VideoRequest, progress: ProgressCallback, cancel: CancelToken) -> VideoSegment:
        t0 = time.monotonic()
        if self._config_error:
            raise RemoteError(Reason.CONFIG, self._config_error, backend=self.name)
        check_cancel(cancel, f"{self.label} video generation")
        step = request.step
        video_path, last_path = self.segment_paths(request)
        video_path.parent.mkdir(parents=True, exist_ok=True)
        start_path = request.start_image_path or request.reference_image_path
        if start_path is None:
            raise RemoteError(Reason.CONFIG, f"{self.label} needs a start image: give the reference image (or the "
                              "previous segment's last frame as start image)", backend=self.name)
        start = load_input_image(start_path, "start image", self.name, self.MAX_IMAGE_BYTES)
        end = (load_input_image(request.end_image_path, "end image", self.name, self.MAX_IMAGE_BYTES)
               if request.end_image_path else None)
        prompt = self.prompt_for(request)
        video_s, notes = self.video_seconds(step.duration_s)
        params = self._job_params(request, start, end, prompt, video_s, notes)
        job = RemoteJob(prompt, start, end, params, video_s, notes)
        key = cache_key(backend=self.name, model=self.model, start=start.sha256, end=end.sha256 if end else "",
                        prompt=prompt, params=params)
        tag = f"{self.name} {self.model}"
        hit = self._from_cache(key, video_path, last_path, cancel)
        if hit is not None:
            self._stats.add(cache_hits=1)
            progress(100, 100, f"{tag}: taken from the cache")
            return self._segment(hit, video_path, last_path, request, time.monotonic() - t0, 0,
                                 ["from the result cache, nothing was generated"] + notes)

        client = self._get_client()
        retries0 = self._stats.retries
        kb = (len(start.data) + (len(end.data) if end else 0)) / 1024
        progress(0, 100, f"{tag}: uploading the start{' and end' if end else ''} image ({kb:.0f} KB) "
                 f"for a {video_s} s video")
        job_id = self._submit(client, job, cancel)
        t_sub = time.monotonic()
        progress(5, 100, f"{tag}: submitted (job {job_id})")

        def fetch() -> str | None:
            st = self._check(client, job_id, cancel)
            elapsed = time.monotonic() - t_sub
            if st.url is None:
                done = 5 + int(75 * min(1.0, elapsed / self.deadline_s))
                progress(done, 100, f"{tag}: {st.state} ({elapsed:.0f} s)")
            return st.url

        url = client.poll(fetch, cancel=cancel, deadline_s=self.deadline_s, what=f"{self.label} job {job_id}",
                          interval_s=self.poll_interval_s, max_interval_s=self.max_poll_interval_s)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self._error(Reason.BAD_RESPONSE, f"the finished job {job_id} gives no http(s) video URL")
        progress(82, 100, f"{tag}: downloading the video ({time.monotonic() - t_sub:.0f} s after submission)")
        decoded: list[_Decoded] = []

        def validate(tmp: Path) -> None:
            progress(92, 100, f"{tag}: validating the video")
            decoded.append(self._decode(tmp, cancel))

        try:
            self._download(client, url, video_path, cancel, validate)
        except RemoteError as e:
            if e.reason == Reason.NOT_FOUND:
                raise RemoteError(Reason.NOT_FOUND, f"{str(e).removeprefix(self.name + ': ')}; the result of job "
                                  f"{job_id} is gone (results are kept for a limited time): run the step again",
                                  backend=self.name, status=e.status) from None
            raise
        info = decoded[-1]
        self.cache.put(key, video_path, ".mp4")
        progress(100, 100, f"{tag}: done")
        return self._segment(info, video_path, last_path, request, time.monotonic() - t0,
                             self._stats.retries - retries0, notes)

    def _from_cache(self, key: str, video_path: Path, last_path: Path, cancel: CancelToken) -> _Decoded | None:
        src = self.cache.get(key, ".mp4")
        if src is None:
            return None
        try:
            info = self._decode(src, cancel)
        except RemoteError:
            return None  # a damaged entry is a miss: generate again (and overwrite it)
        try:
            if not self.cache.fetch(key, ".mp4", video_path):
                return None
        except OSError:
            return None
        return info

    def _decode(self, path: Path, cancel: CancelToken) -> _Decoded:
        """Check a video: it opens, decodes >= 1 frame, frames of a sane size; fps from the file."""
        what = f"the {self.label} video"
        try:
            fps, _n, w, h = video_info(path)
        except VideoReadError as e:
            raise self._error(Reason.BAD_RESPONSE, f"{what} is not playable ({str(e).replace(str(path), 'file')}); "
                              "retry the step") from None
        if not (MIN_SIDE_PX <= w <= MAX_SIDE_PX and MIN_SIDE_PX <= h <= MAX_SIDE_PX):
            raise self._error(Reason.BAD_RESPONSE, f"{what} has an implausible frame size {w}x{h}")
        count, last = 0, None
        try:
            for count, frame in enumerate(read_video_frames(path), start=1):
                last = frame
                if count % 30 == 0:
                    check_cancel(cancel, f"{self.label} video validation")
        except VideoReadError as e:
            raise self._error(Reason.BAD_RESPONSE, f"{what} cannot be decoded ({type(e).__name__})") from None
        if last is None:
            raise self._error(Reason.BAD_RESPONSE, f"{what} has no decodable frame; retry the step")
        if last.shape[1::-1] != (w, h):
            raise self._error(Reason.BAD_RESPONSE, f"{what} decodes to {last.shape[1]}x{last.shape[0]} frames, "
                              f"its header says {w}x{h}")
        return _Decoded(fps, count, w, h, last)

    def _segment(self, info: _Decoded, video_path: Path, last_path: Path, request: VideoRequest, seconds: float,
                 retries: int, notes: list[str]) -> VideoSegment:
        write_image_rgb(last_path, info.last)
        msg = (f"{self.name} {self.model}: {info.frames} frames {info.width}x{info.height} at {info.fps:g} fps "
               f"({info.frames / info.fps:.1f} s of video for a {request.step.duration_s:g} s step) in "
               f"{seconds:.1f} s, {retries} retries")
        if notes:
            msg += "; " + "; ".join(notes)
        return VideoSegment(video_path, last_path, info.fps, info.frames, info.width, info.height, msg)
