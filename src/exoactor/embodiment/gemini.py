"""Embodiment transfer with a Gemini image model (default Nano Banana Pro, ``gemini-3-pro-image-preview``).

As in the ExoActor paper, the robot image is edited into the same scene with a human standing
exactly where the robot stands: same camera, layout, lighting, pose, facing and scale, with
robot-like body proportions and plain fitted clothing. See :mod:`exoactor.remote.gemini` for the
REST call and ``/work/shared/notes/models-and-apis.md`` for the request/response shapes.
"""
from __future__ import annotations

import base64
import hashlib
import math
import os
import tempfile
import threading

import cv2
import numpy as np

from exoactor.embodiment.base import EmbodimentTransfer, check_robot_image
from exoactor.progress import (
    NEVER_CANCELED,
    CancelToken,
    ProgressCallback,
    check_cancel,
    no_progress,
)
from exoactor.remote.cache import DEFAULT_CACHE_DIR, ResultCache, cache_key
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.gemini import (
    GEMINI_BASE_URL,
    GEMINI_KEY_ENVS,
    answer_parts,
    block_message,
    finish_reason,
    gemini_client,
    generate_content,
    quote,
    text_of,
)
from exoactor.remote.http import RemoteStats
from exoactor.remote.params import connection_parameters

DEFAULT_PROMPT = (
    "Edit this photo. Replace the humanoid robot with a real adult human; change nothing else. "
    "The person stands exactly where the robot stands, at the same place and size in the frame, facing the "
    "same direction, with the same body pose: head, torso, arms, hands and legs in the same configuration and "
    "orientation as the robot's. Give the person body proportions close to the robot's (same height in the "
    "image, similar shoulder width and limb lengths). The person wears plain, fitted, neutral-coloured clothing "
    "(long-sleeved top, trousers, shoes), nothing loose, no bag, hat or accessories, and holds nothing the robot "
    "does not hold. The whole body from head to feet stays in view. Keep the scene, every object, the layout, "
    "the background, the camera viewpoint, framing, field of view, lighting and shadows exactly as in the input; "
    "do not crop, zoom, pan or re-frame, do not add or remove anything else, and add no text or borders. "
    "Output one photorealistic image.")
"""The embodiment-transfer instruction (the ``prompt`` parameter's default)."""

SUPPORTED_ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
"""``imageConfig.aspectRatio`` values the Gemini image models accept."""

MAX_INLINE_BYTES = 20_000_000
"""Gemini's limit on a request with inline data (base64 image + prompt + JSON)."""

CACHE_VERSION = 1


def _ratio(name: str) -> float:
    w, h = name.split(":")
    return float(w) / float(h)


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The supported ``aspectRatio`` closest to ``width/height`` (in log scale, so 2:1 and 1:2 are symmetric)."""
    a = width / height
    return min(SUPPORTED_ASPECT_RATIOS, key=lambda r: abs(math.log(_ratio(r) / a)))


def _pad_to_ratio(img: np.ndarray, ratio: float) -> tuple[np.ndarray, tuple[int, int]]:
    """``img`` centred on black to the aspect ``ratio``; returns (padded, (x0, y0) of the original)."""
    h, w = img.shape[:2]
    if w / h < ratio:
        wp, hp = int(round(h * ratio)), h
    else:
        wp, hp = w, int(round(w / ratio))
    x0, y0 = (wp - w) // 2, (hp - h) // 2
    out = np.zeros((hp, wp, 3), np.uint8)
    out[y0:y0 + h, x0:x0 + w] = img
    return out, (x0, y0)


def _encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _decode_rgb(data: bytes) -> np.ndarray | None:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    return None if bgr is None else np.ascontiguousarray(bgr[:, :, ::-1])


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    shrink = rgb.shape[1] > width or rgb.shape[0] > height
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


class GeminiImageTransfer(EmbodimentTransfer):
    """Robot image -> the same scene with a human in the robot's place, by a Gemini image model.

    The returned image always has the input's size: Gemini answers at its own resolution (an
    ``imageSize`` tier and a supported ``aspectRatio``, the one nearest the input's), and the
    camera calibration downstream (grounding, motion estimation) is for the INPUT image size, so
    the answer is validated (decodable, at least ``min_output_side_px``, aspect ratio within
    ``aspect_tolerance`` of what was sent) and resized to the input's width and height. An input
    whose aspect ratio is not within ``aspect_tolerance`` of a supported one is sent centred on
    black borders of the nearest supported ratio, and the matching region is cut out of the
    answer, so the scene is never stretched.
    """

    name = "gemini"
    paints_human = True
    PARAMETERS = connection_parameters(
        {"base_url": GEMINI_BASE_URL,
         "model": ("gemini-3-pro-image-preview", "Gemini image model id (e.g. gemini-2.5-flash-image)"),
         "api_key_env": GEMINI_KEY_ENVS, "read_timeout_s": (180.0, "seconds to wait for the generated image"),
         "max_retries": 3, "backoff_base_s": 2.0},
        {"prompt": (DEFAULT_PROMPT, "instruction sent with the robot image"),
         "image_size": ("2K", "imageConfig.imageSize: 1K, 2K or 4K ('' = the model's default; "
                              "gemini-2.5-flash-image takes '')"),
         "aspect_tolerance": (0.03, "allowed relative aspect-ratio deviation of the answer from the input"),
         "min_output_side_px": (256, "smallest acceptable shorter side of the returned image [px]")})

    def __init__(self, base_url: str = GEMINI_BASE_URL, model: str = "gemini-3-pro-image-preview",
                 prompt: str = DEFAULT_PROMPT, image_size: str = "2K", api_key_env: str = GEMINI_KEY_ENVS,
                 api_key_file: str = "", connect_timeout_s: float = 10.0, read_timeout_s: float = 180.0,
                 max_retries: int = 3, backoff_base_s: float = 2.0, cache_dir: str = DEFAULT_CACHE_DIR,
                 aspect_tolerance: float = 0.03, min_output_side_px: int = 256, **_ignored):
        self.base_url, self.model = str(base_url), str(model)
        self.prompt = str(prompt).strip() or DEFAULT_PROMPT
        self.image_size = str(image_size).strip()
        self.api_key_env, self.api_key_file = str(api_key_env), str(api_key_file)
        self._timeouts = (float(connect_timeout_s), float(read_timeout_s))
        self.max_retries, self.backoff_base_s = int(max_retries), float(backoff_base_s)
        self.aspect_tolerance = max(0.0, float(aspect_tolerance))
        self.min_output_side_px = int(min_output_side_px)
        self.cache = ResultCache(cache_dir, "gemini_image")
        self._stats = RemoteStats(self.name)
        self._client = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GeminiImageTransfer(model={self.model!r}, base_url={self.base_url!r})"

    def stats(self) -> dict:
        return self._stats.as_dict()

    def _remote(self):
        """The client, built on first use (a missing key is an AUTH error per call, not at start)."""
        with self._lock:
            if self._client is None:
                client = gemini_client(self.name, base_url=self.base_url, api_key_env=self.api_key_env,
                                       api_key_file=self.api_key_file, connect_timeout_s=self._timeouts[0],
                                       read_timeout_s=self._timeouts[1], max_retries=self.max_retries,
                                       backoff_base_s=self.backoff_base_s)
                client.stats = self._stats
                self._client = client
            return self._client

    def _error(self, reason: str, message: str) -> RemoteError:
        self._stats.add(errors=1)
        return RemoteError(reason, message, backend=self.name)

    # ---- the transfer ---------------------------------------------------------------------------
    def transfer(self, robot_rgb: np.ndarray, progress: ProgressCallback = no_progress,
                 cancel: CancelToken = NEVER_CANCELED) -> np.ndarray:
        check_cancel(cancel, "embodiment transfer")
        check_robot_image(robot_rgb)
        h, w = robot_rgb.shape[:2]
        aspect = nearest_aspect_ratio(w, h)
        key = cache_key(v=CACHE_VERSION, image=self._image_hash(robot_rgb), prompt=self.prompt, model=self.model,
                        config={"aspectRatio": aspect, "imageSize": self.image_size,
                                "aspect_tolerance": self.aspect_tolerance, "min_side": self.min_output_side_px})
        cached = self._cached(key, w, h)
        if cached is not None:
            progress(3, 3, f"gemini: cached result for this image, prompt and model ({self.model})")
            return cached

        client = self._remote()
        box = (0.0, 0.0, 1.0, 1.0)  # where the robot image lies in the sent image, as fractions
        sent = robot_rgb
        if abs(math.log(_ratio(aspect) / (w / h))) > self.aspect_tolerance:
            sent, (x0, y0) = _pad_to_ratio(robot_rgb, _ratio(aspect))
            sh, sw = sent.shape[:2]
            box = (x0 / sw, y0 / sh, (x0 + w) / sw, (y0 + h) / sh)
        png, sent = self._inline_png(sent)
        progress(0, 3, f"gemini: sending the {w}x{h} image ({len(png) / 1e6:.1f} MB PNG) to {self.model}")
        image_config = {"aspectRatio": aspect}
        if self.image_size:
            image_config["imageSize"] = self.image_size
        body = {
            "contents": [{"role": "user", "parts": [
                {"text": self.prompt},
                {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode("ascii")}}]}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config},
        }
        check_cancel(cancel, "embodiment transfer")
        progress(1, 3, f"gemini: waiting for Gemini ({self.model}, {aspect}, {self.image_size or 'default size'})")
        reply = generate_content(client, self.model, body, cancel=cancel, what="embodiment transfer")
        check_cancel(cancel, "embodiment transfer")
        progress(2, 3, "gemini: validating the returned image")
        out = self._validated(reply, sent, robot_rgb.shape, box, aspect)
        self._store(key, out)
        progress(3, 3, f"gemini: human painted ({out.shape[1]}x{out.shape[0]})")
        return out

    @staticmethod
    def _image_hash(rgb: np.ndarray) -> str:
        h = hashlib.sha256(f"{rgb.shape}".encode())
        h.update(np.ascontiguousarray(rgb).tobytes())
        return h.hexdigest()

    def _inline_png(self, rgb: np.ndarray) -> tuple[bytes, np.ndarray]:
        """PNG bytes of ``rgb`` small enough to go inline (downscaled if needed) and the image they hold."""
        budget = MAX_INLINE_BYTES - len(self.prompt.encode()) - 4096
        while True:
            png = _encode_png(rgb)
            if 4 * math.ceil(len(png) / 3) <= budget:
                return png, rgb
            scale = 0.9 * math.sqrt(budget * 3 / 4 / len(png))
            nw, nh = max(16, int(rgb.shape[1] * scale)), max(16, int(rgb.shape[0] * scale))
            if (nw, nh) == rgb.shape[1::-1]:
                raise self._error(Reason.CONFIG, "the image cannot be made small enough to send inline")
            rgb = _resize(rgb, nw, nh)

    def _validated(self, reply: dict, sent: np.ndarray, in_shape: tuple, box: tuple[float, float, float, float],
                   aspect: str) -> np.ndarray:
        what = "embodiment transfer"
        parts = answer_parts(reply, backend=self.name, what=what)
        images = [p["inlineData"] for p in parts
                  if isinstance(p.get("inlineData"), dict) and p["inlineData"].get("data")]
        if not images:
            said = text_of(parts)
            said = f"; the model said {quote(said, 300)}" if said.strip() else ""
            blocked = block_message(reply)
            if blocked:
                raise self._error(Reason.CONTENT_BLOCKED, f"{what}: {blocked}{said}; "
                                  "try another image or a different prompt parameter")
            fr = finish_reason(reply)
            fr = f" (finishReason {fr})" if fr and fr != "STOP" else ""
            raise self._error(Reason.BAD_RESPONSE, f"{what}: the reply holds no image{fr}{said}")
        try:
            data = base64.b64decode(images[-1]["data"], validate=False)
        except (ValueError, TypeError):
            data = b""
        img = _decode_rgb(data)
        if img is None:
            raise self._error(Reason.BAD_RESPONSE, f"{what}: the returned image ({len(data)} bytes, "
                              f"{images[-1].get('mimeType', 'no mimeType')}) cannot be decoded")
        oh, ow = img.shape[:2]
        if min(oh, ow) < self.min_output_side_px:
            raise self._error(Reason.BAD_RESPONSE, f"{what}: the returned image is {ow}x{oh}, smaller than "
                              f"min_output_side_px={self.min_output_side_px}")
        sh, sw = sent.shape[:2]
        sent_a, out_a = sw / sh, ow / oh
        allowed = abs(math.log(_ratio(aspect) / sent_a)) + self.aspect_tolerance
        if abs(math.log(out_a / sent_a)) > allowed:
            raise self._error(Reason.BAD_RESPONSE, f"{what}: the returned image is {ow}x{oh} (aspect {out_a:.3f}) "
                              f"but {sw}x{sh} (aspect {sent_a:.3f}, requested {aspect}) was sent; more than "
                              f"{math.expm1(allowed) * 100:.1f}% off, so it cannot be mapped onto the camera image")
        h, w = in_shape[:2]
        if box != (0.0, 0.0, 1.0, 1.0):  # cut the robot image's region out of the padded frame
            img = img[int(round(box[1] * oh)):int(round(box[3] * oh)), int(round(box[0] * ow)):int(round(box[2] * ow))]
        return _resize(np.ascontiguousarray(img), w, h)

    # ---- cache ------------------------------------------------------------------------------------
    def _cached(self, key: str, w: int, h: int) -> np.ndarray | None:
        path = self.cache.get(key, ".png")
        if path is None:
            return None
        img = _decode_rgb(path.read_bytes())
        if img is None or img.shape[:2] != (h, w):
            return None
        self._stats.add(cache_hits=1)
        return img

    def _store(self, key: str, rgb: np.ndarray) -> None:
        if not self.cache.enabled:
            return
        fd, tmp = tempfile.mkstemp(suffix=".png", prefix="exoactor-gemini-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_encode_png(rgb))
            self.cache.put(key, tmp, ".png")
        finally:
            os.unlink(tmp)
