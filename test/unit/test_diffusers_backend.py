"""The ``diffusers`` video backend on a tiny, randomly initialised Wan image-to-video pipeline (CPU, offline).

The tiny pipeline has the real architecture (Wan VAE and transformer, UMT5 text encoder, CLIP image
encoder) at toy sizes, and a word-level tokenizer built in memory: nothing is downloaded.
"""
from __future__ import annotations

import sys
import threading

import diffusers  # noqa: F401 - installed by scripts/requirements-offline.txt: missing is a failure, not a skip
import numpy as np
import pytest
import torch
import transformers  # noqa: F401 - as diffusers

from exoactor.geometry import DEFAULT_CALIBRATION
from exoactor.planning.vocabulary import Step
from exoactor.progress import Canceled
from exoactor.registry import load_backend
from exoactor.video import VIDEO_BACKENDS
from exoactor.video.base import VideoGenerationError, VideoRequest
from exoactor.video.diffusers_backend import DiffusersVideoGenerator
from exoactor.video.io import read_image_rgb, read_video_frames, video_info, write_image_rgb

WORDS = "the person raises left right arm hand overhead walks forward static camera".split()
IMG_H, IMG_W = 40, 56  # not multiples of 16: the backend must round for the model and resize back
CAM = DEFAULT_CALIBRATION.camera(IMG_W, IMG_H)
STEP = Step("raise_arm", side="left", duration_s=1.0, prompt="The person raises the left arm overhead.")
FAST = dict(num_inference_steps=2, num_frames=9, fps=8.0, max_sequence_length=16, negative_prompt="static")


def tiny_wan_i2v(first_last_frame: bool = False):
    """A WanImageToVideoPipeline with random weights at toy sizes (as diffusers' own fast tests)."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        PreTrainedTokenizerFast,
        UMT5Config,
        UMT5EncoderModel,
    )

    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>")
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=32, num_layers=1,
                                               num_heads=2, relative_attention_num_buckets=8))
    clip_tokens = 4 * 4 + 1  # 4x4 patches of 1 px + the class token
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32, image_dim=4, pos_embed_seq_len=2 * clip_tokens if first_last_frame else None)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                                     num_attention_heads=2, image_size=4, intermediate_size=16,
                                                     patch_size=1))
    return WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=CLIPImageProcessor(crop_size=4, size=4), image_encoder=image_encoder, transformer=transformer)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Toy-sized ops: on a busy 2-core machine, more threads only wait on each other (20x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_pipe(one_torch_thread):
    return tiny_wan_i2v()


@pytest.fixture
def episode(tmp_path):
    yy, xx = np.mgrid[0:IMG_H, 0:IMG_W]
    img = np.stack([xx * 255 // IMG_W, yy * 255 // IMG_H, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    write_image_rgb(tmp_path / "reference.png", img)
    write_image_rgb(tmp_path / "end.png", img[::-1].copy())
    return tmp_path


def request(d, step=STEP, end=False) -> VideoRequest:
    return VideoRequest(d, [step], 0, d / "reference.png", None, CAM, end_image_path=d / "end.png" if end else None)


class Recorder:
    def __init__(self, cancel_after: int | None = None):
        self.calls: list[tuple[int, int, str]] = []
        self.cancel = threading.Event()
        self.cancel_after = cancel_after

    def __call__(self, done, total, detail):
        self.calls.append((done, total, detail))
        if self.cancel_after is not None and done >= self.cancel_after:
            self.cancel.set()


class Spy:
    """Delegates to a pipeline and records the keyword arguments of each call."""

    def __init__(self, pipe):
        self._pipe, self.kwargs = pipe, []

    def __call__(self, **kwargs):
        self.kwargs.append(kwargs)
        return self._pipe(**kwargs)

    def __getattr__(self, name):
        return getattr(self._pipe, name)


def test_generates_a_segment_with_progress_per_step(tiny_pipe, episode):
    gen = DiffusersVideoGenerator(pipeline=tiny_pipe, seed=3, **FAST)
    rec = Recorder()
    seg = gen.generate(request(episode), rec, rec.cancel)
    assert seg.video_path == episode / "segment_00.mp4" and seg.last_frame_path == episode / "segment_00_last.png"
    fps, n, w, h = video_info(seg.video_path)
    assert (n, w, h) == (9, IMG_W, IMG_H) and abs(fps - 8.0) < 1e-3  # resized back to the start image
    frames = list(read_video_frames(seg.video_path))
    assert len(frames) == 9 and frames[0].shape == (IMG_H, IMG_W, 3)
    assert read_image_rgb(seg.last_frame_path).shape == (IMG_H, IMG_W, 3)
    assert (seg.fps, seg.num_frames, seg.width, seg.height) == (8.0, 9, IMG_W, IMG_H)
    assert [c[:2] for c in rec.calls] == [(0, 3), (1, 3), (2, 3), (3, 3)]  # encode, 2 denoising steps, write
    assert "denoising step 1/2" in rec.calls[1][2] and "seed 3" in seg.message


def test_generation_size_frames_and_seed(tiny_pipe, episode):
    spy = Spy(tiny_pipe)
    opts = dict(pipeline=spy, resize_to_input=False, **{**FAST, "num_frames": 0, "fps": 0})
    wave = request(episode, Step("wave", side="right", duration_s=0.5, prompt="waves"))
    seg = DiffusersVideoGenerator(**opts).generate(wave, Recorder(), threading.Event())
    kw = spy.kwargs[-1]
    assert (kw["height"], kw["width"]) == (32, 48) and kw["image"].size == (48, 32)  # multiples of 16, aspect kept
    assert kw["num_frames"] == 9 and seg.num_frames == 9  # 0.5 s at the Wan 2.1 native 16 fps, 4k+1 frames
    assert (seg.width, seg.height, seg.fps) == (48, 32, 16.0)
    assert "last_image" not in kw and "callback_on_step_end" in kw
    first = np.stack(list(read_video_frames(seg.video_path)))
    again = DiffusersVideoGenerator(**opts).generate(wave, Recorder(), threading.Event())
    assert np.array_equal(first, np.stack(list(read_video_frames(again.video_path))))  # seed 0 twice: same video
    other = DiffusersVideoGenerator(**{**opts, "seed": 1}).generate(wave, Recorder(), threading.Event())
    assert not np.array_equal(first, np.stack(list(read_video_frames(other.video_path))))
    long = DiffusersVideoGenerator(**{**opts, "max_frames": 5}).generate(request(episode), Recorder(),
                                                                        threading.Event())
    assert long.num_frames == 5 and "the step lasts 1 s but the model makes at most 5 frames" in long.message


def test_cancel_mid_run_raises_canceled(tiny_pipe, episode):
    gen = DiffusersVideoGenerator(pipeline=tiny_pipe, **{**FAST, "num_inference_steps": 4})
    rec = Recorder(cancel_after=1)
    with pytest.raises(Canceled):
        gen.generate(request(episode), rec, rec.cancel)
    assert [c[0] for c in rec.calls] == [0, 1]  # stopped at the step after the cancel
    assert not (episode / "segment_00.mp4").exists() and not (episode / "segment_00_last.png").exists()
    early = threading.Event()
    early.set()
    with pytest.raises(Canceled):
        gen.generate(request(episode), Recorder(), early)
    seg = gen.generate(request(episode), Recorder(), threading.Event())  # the pipeline still works afterwards
    assert seg.num_frames == 9


def test_end_image_goes_to_first_last_frame_models_only(tiny_pipe, episode):
    plain = DiffusersVideoGenerator(pipeline=Spy(tiny_pipe), **FAST)
    seg = plain.generate(request(episode, end=True), Recorder(), threading.Event())
    assert "end image ignored" in seg.message and "last_image" not in plain._pipe.kwargs[-1]
    flf = Spy(tiny_wan_i2v(first_last_frame=True))
    gen = DiffusersVideoGenerator(pipeline=flf, **FAST)
    seg = gen.generate(request(episode, end=True), Recorder(), threading.Event())
    assert seg.num_frames == 9 and "end image" in seg.message and flf.kwargs[-1]["last_image"].size == (48, 32)
    with pytest.raises(VideoGenerationError, match="first-and-last-frame model"):
        gen.generate(request(episode), Recorder(), threading.Event())


def test_loads_a_saved_pipeline_from_a_folder_once(tiny_pipe, episode, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny-wan-i2v"
    tiny_pipe.save_pretrained(folder)
    gen = load_backend(VIDEO_BACKENDS, "diffusers", "video", model_id=str(folder), device="auto", dtype="auto",
                       local_files_only=True, video_paths=[""], **FAST)
    assert isinstance(gen, DiffusersVideoGenerator) and gen.max_concurrency == 1
    assert gen.warm_up() is None and gen.load_error is None
    pipe = gen._pipe
    assert type(pipe).__name__ == "WanImageToVideoPipeline" and pipe.transformer.dtype == torch.float32
    gen.warm_up()
    seg = gen.generate(request(episode), Recorder(), threading.Event())
    assert gen._pipe is pipe and seg.num_frames == 9 and f"with {folder} on cpu" in seg.message
    auto = DiffusersVideoGenerator(model_id=str(folder), pipeline_class="auto", device="cpu", dtype="bfloat16", **FAST)
    assert auto.warm_up() is None and auto._pipe.transformer.dtype == torch.bfloat16
    assert auto._pipe.vae.dtype == torch.float32  # the VAE stays in float32 in reduced precision


def test_parameters_are_declared_for_every_option():
    assert DiffusersVideoGenerator.name == "diffusers"
    for key, (default, desc) in DiffusersVideoGenerator.PARAMETERS.items():
        assert isinstance(desc, str) and desc
        DiffusersVideoGenerator(**{key: default})  # every declared key is accepted with its default
    assert DiffusersVideoGenerator.PARAMETERS["model_id"][0] == "Wan-AI/Wan2.2-TI2V-5B-Diffusers"


@pytest.mark.parametrize("model_id, match", [
    ("exoactor-test/no-such-model-Diffusers", "not in the local Hugging Face cache"),
    ("/nonexistent/wan/folder", "neither an existing folder nor a hub id"),
])
def test_a_model_that_cannot_be_found_is_a_clear_error(episode, model_id, match):
    gen = DiffusersVideoGenerator(model_id=model_id, device="cpu", local_files_only=True, **FAST)
    err = gen.warm_up()  # logs and returns the reason; never raises at node start
    assert err and match in err and gen.load_error == err
    with pytest.raises(VideoGenerationError, match=match):
        gen.generate(request(episode), Recorder(), threading.Event())


def test_a_folder_that_is_not_a_pipeline_is_a_clear_error(tmp_path, episode):
    gen = DiffusersVideoGenerator(model_id=str(tmp_path), device="cpu", **FAST)
    with pytest.raises(VideoGenerationError, match="no model_index.json"):
        gen.generate(request(episode), Recorder(), threading.Event())


def test_unknown_pipeline_class_is_a_clear_error(tmp_path):
    gen = DiffusersVideoGenerator(model_id=str(tmp_path), pipeline_class="NoSuchPipeline", device="cpu")
    assert "is not a pipeline of diffusers" in gen.warm_up()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error(episode):
    gen = DiffusersVideoGenerator(model_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers", device="cuda", **FAST)
    with pytest.raises(VideoGenerationError, match="diffusers.device is 'cuda' but .*set diffusers.device"):
        gen.generate(request(episode), Recorder(), threading.Event())


def test_missing_diffusers_install_is_a_clear_error(monkeypatch, episode):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers -> ImportError
    gen = DiffusersVideoGenerator(device="cpu", **FAST)
    assert "needs the diffusers package" in gen.warm_up() and "pip install" in gen.load_error
    with pytest.raises(VideoGenerationError, match="needs the diffusers package"):
        gen.generate(request(episode), Recorder(), threading.Event())


def test_out_of_memory_is_a_clear_error(tiny_pipe, episode):
    class OutOfMemoryPipe(Spy):
        def __call__(self, **kwargs):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    gen = DiffusersVideoGenerator(pipeline=OutOfMemoryPipe(tiny_pipe), enable_model_cpu_offload=False, **FAST)
    with pytest.raises(VideoGenerationError, match="ran out of memory .*enable_model_cpu_offload true") as e:
        gen.generate(request(episode), Recorder(), threading.Event())
    assert e.value.__cause__ is None and e.value.__context__ is None
