"""Local open-weights image-to-video backend: a Hugging Face ``diffusers`` pipeline (Wan 2.x I2V).

For users with a GPU. The pipeline is loaded once, lazily (``warm_up`` at node start, else on the
first segment), from a hub id (downloaded into the Hugging Face cache on first use unless
``local_files_only``) or from a local folder written by ``save_pretrained``. Each segment is
conditioned on the start image (the previous segment's last frame, else the reference image) and
the step's prompt; models that support it also get the segment's end image (Wan FLF2V
``last_image``). Frames are resized back to the start image's size by default, so the calibrated
camera's intrinsics still apply to the video.

Known models (``pipeline_class`` WanImageToVideoPipeline):
- ``Wan-AI/Wan2.2-TI2V-5B-Diffusers`` (default): 24 fps, up to 121 frames, 704x1280; a 24 GB GPU
  with ``enable_model_cpu_offload``.
- ``Wan-AI/Wan2.1-I2V-14B-480P-Diffusers`` / ``-720P-Diffusers``: 16 fps, up to 81 frames.
- ``Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers``: first-and-last-frame; needs an end image per segment.
- ``Wan-AI/Wan2.2-I2V-A14B-Diffusers``: two experts, 16 fps, 81 frames; 80 GB class GPU or offload.
"""
from __future__ import annotations

import gc
import inspect
import logging
import math
import os
import random
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from exoactor.progress import Canceled, CancelToken, ProgressCallback
from exoactor.video.base import VideoGenerationError, VideoGenerator, VideoRequest, VideoSegment
from exoactor.video.io import VideoReadError, VideoWriter, read_image_rgb, write_image_rgb

log = logging.getLogger(__name__)

DEFAULT_MODEL = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
WAN_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards")
INSTALL_HINT = "pip install -r scripts/requirements-offline.txt (diffusers, transformers, accelerate)"


class _Interrupted(Exception):
    """Raised from the step callback to leave the pipeline at once (no final VAE decode)."""


class DiffusersVideoGenerator(VideoGenerator):
    """Runs a diffusers image-to-video pipeline locally; see the module docstring for models."""

    name = "diffusers"
    max_concurrency = 1
    PARAMETERS: dict[str, tuple[object, str]] = {
        "model_id": (DEFAULT_MODEL, "Hugging Face hub id or local folder of a diffusers image-to-video pipeline"),
        "pipeline_class": ("WanImageToVideoPipeline",
                           "diffusers pipeline class to load with; 'auto' = the class named in model_index.json"),
        "device": ("auto", "'auto' (CUDA if available, else CPU: very slow), 'cuda', 'cuda:N' or 'cpu'"),
        "dtype": ("auto", "'auto' (bfloat16 on CUDA, float32 on CPU), 'bfloat16', 'float16' or 'float32'"),
        "enable_model_cpu_offload": (True, "keep idle sub-models in CPU memory (fits 24 GB GPUs; a bit slower)"),
        "vae_tiling": (False, "decode the video in tiles (less GPU memory for large frames)"),
        "local_files_only": (False, "never download: load only from the local Hugging Face cache or folder"),
        "num_inference_steps": (40, "denoising steps (fewer: faster, rougher)"),
        "guidance_scale": (5.0, "classifier-free guidance scale (1 = off, twice as fast)"),
        "num_frames": (0, "frames per segment; 0 = the step's duration at fps, at most max_frames"),
        "max_frames": (0, "longest segment in frames; 0 = the model's trained length (121 Wan2.2 5B, else 81)"),
        "fps": (0.0, "frame rate of the video; 0 = the model's native rate (24 Wan2.2 5B, else 16)"),
        "height": (0, "generation height in pixels; 0 = from the image's aspect ratio and max_pixels"),
        "width": (0, "generation width in pixels; 0 = from the image's aspect ratio and max_pixels"),
        "max_pixels": (0, "largest generation area (height*width); 0 = the model's (704*1280 Wan2.2 5B, else 480*832)"),
        "resize_to_input": (True, "resize generated frames back to the start image's size (camera intrinsics hold)"),
        "use_end_image": (True, "condition on the segment's end image when the model supports it (Wan FLF2V)"),
        "seed": (0, "random seed of the initial noise; -1 = a new random seed each segment"),
        "negative_prompt": (WAN_NEGATIVE_PROMPT, "what the video should not show"),
        "max_sequence_length": (512, "text tokens given to the text encoder"),
    }

    def __init__(self, model_id: str = DEFAULT_MODEL, pipeline_class: str = "WanImageToVideoPipeline",
                 device: str = "auto", dtype: str = "auto", enable_model_cpu_offload: bool = True,
                 vae_tiling: bool = False, local_files_only: bool = False, num_inference_steps: int = 40,
                 guidance_scale: float = 5.0, num_frames: int = 0, max_frames: int = 0, fps: float = 0.0,
                 height: int = 0, width: int = 0, max_pixels: int = 0, resize_to_input: bool = True,
                 use_end_image: bool = True, seed: int = 0, negative_prompt: str = WAN_NEGATIVE_PROMPT,
                 max_sequence_length: int = 512, pipeline=None, **_ignored):
        self.model_id = str(model_id or DEFAULT_MODEL).strip()
        self.pipeline_class = str(pipeline_class or "auto").strip()
        self.device = str(device or "auto").strip().lower()
        self.dtype = str(dtype or "auto").strip().lower()
        self.cpu_offload = bool(enable_model_cpu_offload)
        self.vae_tiling = bool(vae_tiling)
        self.local_files_only = bool(local_files_only)
        self.num_inference_steps = int(num_inference_steps)
        self.guidance_scale = float(guidance_scale)
        self.num_frames = int(num_frames)
        self.max_frames = int(max_frames)
        self.fps = float(fps)
        self.height, self.width, self.max_pixels = int(height), int(width), int(max_pixels)
        self.resize_to_input = bool(resize_to_input)
        self.use_end_image = bool(use_end_image)
        self.seed = int(seed)
        self.negative_prompt = str(negative_prompt or "")
        self.max_sequence_length = int(max_sequence_length)
        if self.num_inference_steps < 1:
            raise ValueError(f"diffusers.num_inference_steps must be >= 1, got {self.num_inference_steps}")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(f"diffusers.dtype must be auto, bfloat16, float16 or float32, got {dtype!r}")
        self._pipe = pipeline
        self._injected = pipeline is not None
        self._exec_device = "cpu"
        self.load_error: str | None = None
        self.load_seconds = 0.0
        self._lock = threading.Lock()
        if self._pipe is not None:
            self._configure(self._pipe)

    # ------------------------------------------------------------------ loading
    def warm_up(self) -> str | None:
        """Load the model now. Never raises for a model that cannot be loaded: the reason is logged,
        kept in ``load_error`` and returned, and each ``generate`` tries to load it again (so a model
        downloaded later is picked up) and fails with that reason until then."""
        try:
            self._ensure_loaded()
        except VideoGenerationError as e:
            log.error("diffusers video backend not ready: %s", e)
            return str(e)
        return None

    def _ensure_loaded(self):
        with self._lock:
            if self._pipe is None:
                t0 = time.monotonic()
                try:
                    self._pipe = self._load()
                except VideoGenerationError as e:
                    self.load_error = str(e)
                    raise
                self.load_error = None
                self.load_seconds = time.monotonic() - t0
                log.info("loaded %s on %s in %.1f s", self.model_id, self._exec_device, self.load_seconds)
            return self._pipe

    def _resolve_device(self, torch) -> str:
        dev = self.device
        if dev == "auto":
            if torch.cuda.is_available():
                return "cuda"
            log.warning("diffusers backend: no CUDA GPU available, running %s on the CPU (very slow)", self.model_id)
            return "cpu"
        if dev.startswith("cuda"):
            if not torch.cuda.is_available():
                why = ("this PyTorch build has no CUDA support" if torch.version.cuda is None
                       else "PyTorch sees no CUDA GPU (driver missing or CUDA_VISIBLE_DEVICES empty?)")
                raise VideoGenerationError(
                    f"diffusers.device is {self.device!r} but {why} (torch {torch.__version__}); "
                    "install a CUDA build of torch, or set diffusers.device to 'auto' or 'cpu'")
            if ":" in dev:
                idx = dev.split(":", 1)[1]
                if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                    raise VideoGenerationError(
                        f"diffusers.device {self.device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
            return dev
        if dev == "cpu":
            return "cpu"
        raise VideoGenerationError(f"diffusers.device must be 'auto', 'cuda', 'cuda:N' or 'cpu', got {self.device!r}")

    def _resolve_dtype(self, torch, device: str):
        if self.dtype == "auto":
            if device.startswith("cuda"):
                return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.float32
        return getattr(torch, self.dtype)

    def _load(self):
        try:
            import diffusers  # noqa: PLC0415
            import torch  # noqa: PLC0415
        except ImportError as e:
            raise VideoGenerationError(
                f"the diffusers video backend needs the diffusers package ({e}); install it: {INSTALL_HINT}") from None
        device = self._resolve_device(torch)
        dtype = self._resolve_dtype(torch, device)
        cls = self._pipeline_cls(diffusers)
        source = self._check_source()
        # The Wan VAE and CLIP image encoder lose quality in half precision: the official examples keep them
        # in float32 and only the transformer and text encoder in bfloat16.
        dtypes = dtype if dtype == torch.float32 else {
            "default": dtype, "vae": torch.float32, "image_encoder": torch.float32}
        local_only = self.local_files_only or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false")
        try:
            pipe = cls.from_pretrained(source, dtype=dtypes, local_files_only=local_only)
        except ImportError as e:
            raise VideoGenerationError(f"loading {self.model_id} needs a package that is missing: {e}; "
                                       f"{INSTALL_HINT}") from None
        except torch.cuda.OutOfMemoryError:
            raise VideoGenerationError(self._oom_message(torch, "loading the model")) from None  # rare: loads to CPU
        except (OSError, ValueError) as e:
            raise VideoGenerationError(self._not_found_message(e, local_only)) from None
        except MemoryError:
            raise VideoGenerationError(
                f"out of CPU memory while loading {self.model_id}: use a smaller model or a machine with more RAM"
            ) from None
        if not callable(getattr(pipe, "__call__", None)) or not hasattr(pipe, "components"):
            raise VideoGenerationError(f"{self.model_id} did not load as a diffusers pipeline")
        oom = False
        try:
            if device.startswith("cuda") and self.cpu_offload:
                pipe.enable_model_cpu_offload(device=device)
            else:
                pipe.to(device)
        except ImportError as e:
            raise VideoGenerationError(f"diffusers.enable_model_cpu_offload needs accelerate ({e}): {INSTALL_HINT}, "
                                       "or set diffusers.enable_model_cpu_offload false") from None
        except torch.cuda.OutOfMemoryError:
            oom = True  # raise outside the handler so that the traceback's references to GPU tensors are gone
        if oom:
            del pipe
            gc.collect()
            raise VideoGenerationError(self._oom_message(torch, "moving the model to the GPU"))
        self._exec_device = device
        self._configure(pipe)
        return pipe

    def _pipeline_cls(self, diffusers):
        name = self.pipeline_class
        if name.lower() == "auto":
            return diffusers.DiffusionPipeline
        try:
            cls = getattr(diffusers, name)
        except (AttributeError, ImportError):
            cls = None
        if not isinstance(cls, type) or not hasattr(cls, "from_pretrained"):
            raise VideoGenerationError(
                f"diffusers.pipeline_class {name!r} is not a pipeline of diffusers {diffusers.__version__}; "
                "use e.g. 'WanImageToVideoPipeline', or 'auto' for the class in the model's model_index.json")
        return cls

    def _check_source(self) -> str:
        """The local folder (checked) or the hub id to load from."""
        mid = self.model_id
        p = Path(mid).expanduser()
        if p.is_dir():
            if not (p / "model_index.json").is_file():
                raise VideoGenerationError(
                    f"{p} is not a diffusers pipeline folder (no model_index.json); point diffusers.model_id at "
                    "a folder written by save_pretrained or by `hf download <model id> --local-dir <folder>`")
            return str(p)
        if mid.startswith(("/", ".", "~")) or mid.count("/") != 1 or "\\" in mid:
            raise VideoGenerationError(
                f"diffusers.model_id {mid!r} is neither an existing folder nor a hub id like '{DEFAULT_MODEL}'")
        return mid

    def _not_found_message(self, e: Exception, local_only: bool) -> str:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        if Path(self.model_id).expanduser().is_dir():
            return f"cannot load the diffusers pipeline in {self.model_id}: {first}"
        if local_only:
            return (f"model {self.model_id!r} is not in the local Hugging Face cache "
                    f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and downloads are off "
                    "(diffusers.local_files_only or HF_HUB_OFFLINE): download it once with "
                    f"`hf download {self.model_id}`, or set diffusers.model_id to a local folder ({first})")
        return (f"model {self.model_id!r} could not be found or downloaded: check the id, the network, and "
                f"`hf auth login` for gated models; or set diffusers.model_id to a local folder ({first})")

    def _oom_message(self, torch, what: str) -> str:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        hints = []
        if not self.cpu_offload:
            hints.append("diffusers.enable_model_cpu_offload true")
        if not self.vae_tiling:
            hints.append("diffusers.vae_tiling true")
        hints.append("fewer frames (diffusers.max_frames) or a smaller size (diffusers.max_pixels)")
        hints.append("or a smaller model (e.g. Wan-AI/Wan2.2-TI2V-5B-Diffusers)")
        return f"the GPU ran out of memory while {what} ({self.model_id}): try " + ", ".join(hints)

    def _configure(self, pipe) -> None:
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        for module in (getattr(pipe, "components", None) or {}).values():
            if hasattr(module, "eval") and hasattr(module, "training"):
                module.eval()  # inference only: no dropout (a pipeline built in code starts in training mode)
        vae = getattr(pipe, "vae", None)
        if self.vae_tiling and vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if self._injected:
            self._exec_device = str(getattr(pipe, "_execution_device", None) or getattr(pipe, "device", "cpu"))

    # ------------------------------------------------------------- model facts
    @staticmethod
    def _is_wan22_ti2v(pipe) -> bool:
        return bool(getattr(getattr(pipe, "config", None), "expand_timesteps", False))

    def _native_fps(self, pipe) -> float:
        return self.fps if self.fps > 0 else (24.0 if self._is_wan22_ti2v(pipe) else 16.0)

    def _frame_limit(self, pipe) -> int:
        return self.max_frames if self.max_frames > 0 else (121 if self._is_wan22_ti2v(pipe) else 81)

    def _pixel_limit(self, pipe) -> int:
        return self.max_pixels if self.max_pixels > 0 else (704 * 1280 if self._is_wan22_ti2v(pipe) else 480 * 832)

    @staticmethod
    def _size_multiple(pipe) -> int:
        spatial = int(getattr(pipe, "vae_scale_factor_spatial", 8) or 8)
        model = getattr(pipe, "transformer", None) or getattr(pipe, "transformer_2", None)
        patch = getattr(getattr(model, "config", None), "patch_size", 1) or 1
        patch = int(patch[-1]) if isinstance(patch, (list, tuple)) else int(patch)
        return math.lcm(spatial * patch, 16)

    def _generation_size(self, pipe, img_h: int, img_w: int) -> tuple[int, int]:
        m = self._size_multiple(pipe)
        aspect = img_h / img_w
        if self.height > 0 and self.width > 0:
            h, w = self.height, self.width
        elif self.height > 0:
            h, w = self.height, self.height / aspect
        elif self.width > 0:
            h, w = self.width * aspect, self.width
        else:
            area = min(img_h * img_w, self._pixel_limit(pipe))
            h, w = math.sqrt(area * aspect), math.sqrt(area / aspect)
        return max(m, int(h) // m * m), max(m, int(w) // m * m)

    def _frame_count(self, pipe, duration_s: float, fps: float) -> int:
        t = int(getattr(pipe, "vae_scale_factor_temporal", 4) or 4)
        n = self.num_frames if self.num_frames > 0 else round(duration_s * fps) + 1
        n = min(n, self._frame_limit(pipe))
        return max(1 + t, (n - 1) // t * t + 1)

    def _end_image_mode(self, pipe, params) -> str:
        """'yes' (takes an end image), 'required' (first-last-frame model) or 'no'."""
        if "last_image" not in params and not _accepts_any(params):
            return "no"
        model = getattr(pipe, "transformer", None)
        cfg = getattr(model, "config", None)
        if cfg is None or not hasattr(cfg, "image_dim"):
            return "yes"
        if cfg.image_dim is not None:  # Wan 2.1: CLIP image tokens; FLF2V models embed two images
            return "required" if getattr(cfg, "pos_embed_seq_len", None) else "no"
        return "no" if self._is_wan22_ti2v(pipe) else "yes"  # the 5B TI2V ignores a last image

    # --------------------------------------------------------------- generate
    def generate(self, request: VideoRequest, progress: ProgressCallback, cancel: CancelToken) -> VideoSegment:
        if cancel.is_set():
            raise Canceled("video generation canceled")
        pipe = self._ensure_loaded()
        import torch  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415

        src = request.start_image_path or request.reference_image_path
        if src is None:
            raise VideoGenerationError("the diffusers backend needs a start or reference image")
        try:
            rgb = read_image_rgb(src)
        except VideoReadError as e:
            raise VideoGenerationError(str(e)) from None
        img_h, img_w = rgb.shape[:2]
        gen_h, gen_w = self._generation_size(pipe, img_h, img_w)
        fps = self._native_fps(pipe)
        n_frames = self._frame_count(pipe, request.step.duration_s, fps)
        params = _call_parameters(pipe)
        notes = []
        if self.num_frames <= 0 and round(request.step.duration_s * fps) + 1 > self._frame_limit(pipe):
            notes.append(f"the step lasts {request.step.duration_s:g} s but the model makes at most "
                         f"{n_frames} frames ({(n_frames - 1) / fps:.1f} s)")
        kwargs = dict(image=_pil(Image, rgb, gen_w, gen_h), prompt=request.step.prompt or request.step.action,
                      negative_prompt=self.negative_prompt or None, height=gen_h, width=gen_w,
                      num_frames=n_frames, num_inference_steps=self.num_inference_steps,
                      guidance_scale=self.guidance_scale, max_sequence_length=self.max_sequence_length,
                      output_type="np")
        seed = self.seed if self.seed >= 0 else random.SystemRandom().randrange(2**31)
        kwargs["generator"] = torch.Generator("cpu").manual_seed(seed)
        end_mode = self._end_image_mode(pipe, params)
        if end_mode == "required" and not (request.end_image_path and self.use_end_image):
            raise VideoGenerationError(
                f"{self.model_id} is a first-and-last-frame model: it needs an end image for every segment; "
                "use an image-to-video model such as " + DEFAULT_MODEL)
        if request.end_image_path and self.use_end_image:
            if end_mode == "no":
                notes.append("end image ignored: the model cannot take one")
            else:
                try:
                    end_rgb = read_image_rgb(request.end_image_path)
                except VideoReadError as e:
                    raise VideoGenerationError(str(e)) from None
                kwargs["last_image"] = _pil(Image, end_rgb, gen_w, gen_h)
                notes.append("conditioned on the end image")

        steps = self.num_inference_steps
        total = steps + 1

        def on_step_end(p, i, _t, _tensors):
            if cancel.is_set():
                p._interrupt = True
                raise _Interrupted
            progress(min(i + 1, steps), total, f"denoising step {min(i + 1, steps)}/{steps}")
            return {}

        if "callback_on_step_end" in params or _accepts_any(params):
            kwargs["callback_on_step_end"] = on_step_end
        kwargs = {k: v for k, v in kwargs.items() if k in params or _accepts_any(params)}

        progress(0, total, f"encoding the prompt and image ({gen_w}x{gen_h}, {n_frames} frames)")
        t0 = time.monotonic()
        oom = False
        try:
            out = pipe(**kwargs)
        except _Interrupted:
            _free_hooks(pipe)
            raise Canceled("video generation canceled") from None
        except torch.cuda.OutOfMemoryError:
            oom = True  # handled below, once the traceback (holding GPU tensors) is released
        except ValueError as e:
            raise VideoGenerationError(f"the {type(pipe).__name__} pipeline rejected the request: {e}") from None
        if oom:
            _free_hooks(pipe)
            gc.collect()
            raise VideoGenerationError(self._oom_message(torch, f"generating {n_frames} frames of {gen_w}x{gen_h}"))
        if cancel.is_set() or getattr(pipe, "_interrupt", False):
            raise Canceled("video generation canceled")
        frames = _frames_uint8(getattr(out, "frames", out))
        if self.resize_to_input and frames.shape[1:3] != (img_h, img_w):
            frames = _resize(frames, img_w, img_h)
        h, w = frames.shape[1:3]
        video_path, last_path = self.segment_paths(request)
        with VideoWriter(video_path, fps, w, h) as writer:
            for f in frames:
                writer.write(f)
            count = writer.frames
        write_image_rgb(last_path, frames[-1])
        progress(total, total, f"wrote {count} frames")
        took = time.monotonic() - t0
        model = f"a given {type(pipe).__name__}" if self._injected else self.model_id
        msg = (f"generated {count} frames ({gen_w}x{gen_h}, {steps} steps, seed {seed}) with {model} "
               f"on {self._exec_device} in {took:.1f} s")
        return VideoSegment(video_path, last_path, fps, count, w, h, "; ".join([msg, *notes]))


def _call_parameters(pipe) -> dict:
    try:
        return dict(inspect.signature(pipe.__call__).parameters)
    except (TypeError, ValueError):
        return {"**": None}


def _accepts_any(params: dict) -> bool:
    return "**" in params or any(getattr(p, "kind", None) == inspect.Parameter.VAR_KEYWORD for p in params.values())


def _pil(Image, rgb: np.ndarray, w: int, h: int):
    img = Image.fromarray(np.ascontiguousarray(rgb))
    return img if img.size == (w, h) else img.resize((w, h), Image.Resampling.LANCZOS)


def _frames_uint8(frames) -> np.ndarray:
    """The pipeline's ``frames`` (np, [batch,] F, H, W, 3, in 0..1; or a list of PIL images) as uint8."""
    if isinstance(frames, (list, tuple)) and frames and isinstance(frames[0], (list, tuple)):
        frames = frames[0]
    if isinstance(frames, (list, tuple)):
        arr = np.stack([np.asarray(f) for f in frames])
    else:
        arr = np.asarray(frames.cpu().float().numpy() if hasattr(frames, "cpu") else frames)
        if arr.ndim == 5:
            arr = arr[0]
    if arr.ndim != 4 or arr.shape[-1] != 3 or len(arr) == 0:
        raise VideoGenerationError(f"the pipeline returned frames of unexpected shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return arr


def _resize(frames: np.ndarray, w: int, h: int) -> np.ndarray:
    interp = cv2.INTER_AREA if w * h < frames.shape[1] * frames.shape[2] else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in frames])


def _free_hooks(pipe) -> None:
    """After an interrupted run, send offloaded sub-models back to the CPU (frees the GPU)."""
    free = getattr(pipe, "maybe_free_model_hooks", None)
    if free is not None:
        try:
            free()
        except Exception as e:  # noqa: BLE001 - best effort cleanup
            log.debug("maybe_free_model_hooks failed: %s", e)
