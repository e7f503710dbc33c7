"""The ``gemini`` embodiment-transfer backend against a local fake of the Gemini API."""
from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest
from fakes.base import Reply
from fakes.gemini import FakeGemini, decode_b64_rgb

from exoactor.embodiment import EMBODIMENT_BACKENDS
from exoactor.embodiment import gemini as gmod
from exoactor.embodiment.base import EmbodimentTransferError
from exoactor.embodiment.gemini import DEFAULT_PROMPT, GeminiImageTransfer, nearest_aspect_ratio
from exoactor.progress import Canceled
from exoactor.registry import backend_class, backend_parameters
from exoactor.remote.errors import Reason, RemoteError

KEY = "test-gemini-key-0123456789"
ENV = "EXOACTOR_TEST_GEMINI_KEY"
PATH = "/v1beta/models/gemini-3-pro-image-preview:generateContent"


@pytest.fixture(scope="module")
def _server():
    with FakeGemini(api_key=KEY) as f:
        yield f


@pytest.fixture
def fake(_server):
    _server.reset()
    return _server


@pytest.fixture
def make(fake, monkeypatch):
    monkeypatch.setenv(ENV, KEY)

    def _make(**kw):
        args = dict(base_url=fake.base_url, api_key_env=ENV, cache_dir="", backoff_base_s=0.01,
                    connect_timeout_s=0.5, read_timeout_s=1.0, max_retries=2, min_output_side_px=64)
        args.update(kw)
        return GeminiImageTransfer(**args)

    return _make


def robot_image(w: int = 320, h: int = 240) -> np.ndarray:
    """A smooth test pattern (survives the fake's resizing) with a dark 'robot' block."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], -1).astype(np.uint8)
    img[h // 4: 3 * h // 4, w // 2 - w // 10: w // 2 + w // 10] = 30
    return img


def test_registered_with_parameters():
    cls = backend_class(EMBODIMENT_BACKENDS, "gemini", "embodiment transfer")
    params = backend_parameters(cls)
    assert cls is GeminiImageTransfer
    assert params["model"][0] == "gemini-3-pro-image-preview" and params["image_size"][0] == "2K"
    assert params["base_url"][0] == "https://generativelanguage.googleapis.com"
    assert params["api_key_env"][0] == "GEMINI_API_KEY,GOOGLE_API_KEY" and params["prompt"][0] == DEFAULT_PROMPT
    for key in ("api_key_file", "connect_timeout_s", "read_timeout_s", "max_retries", "backoff_base_s", "cache_dir"):
        assert key in params
    for default, _desc in params.values():
        assert isinstance(default, (str, int, float, bool)) and default is not None


def test_success_request_shape_and_result(fake, make):
    img = robot_image(320, 240)
    reports = []
    out = make().transfer(img, progress=lambda d, t, s: reports.append((d, t, s)))
    assert out.shape == img.shape and out.dtype == np.uint8
    # The fake paints the colour-inverted input: the FINAL non-thought image came back (not the black thought).
    assert np.abs(out.astype(int) - (255 - img.astype(int))).mean() < 12
    (rec,) = fake.requests
    assert rec.method == "POST" and rec.path == PATH and rec.query == {}
    headers = {k.lower(): v for k, v in rec.headers.items()}
    assert headers["x-goog-api-key"] == KEY and "authorization" not in headers
    assert set(rec.body) == {"contents", "generationConfig"}
    (content,) = rec.body["contents"]
    assert content["role"] == "user"
    text_part, image_part = content["parts"]
    assert text_part == {"text": DEFAULT_PROMPT}
    assert image_part["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(image_part["inlineData"]["data"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode_b64_rgb(image_part["inlineData"]["data"]), img)
    assert rec.body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"],
                                            "imageConfig": {"aspectRatio": "4:3", "imageSize": "2K"}}
    details = " | ".join(r[2] for r in reports)
    assert "sending" in details and "waiting for Gemini" in details and "validating" in details
    assert reports[-1][0] == reports[-1][1]
    s = make().stats()
    assert set(s) >= {"backend", "calls", "retries", "errors", "seconds", "cache_hits"}


def test_prompt_model_and_size_are_parameters(fake, make):
    out = make(model="gemini-2.5-flash-image", prompt="Put a person there.", image_size="").transfer(robot_image())
    assert out.shape == (240, 320, 3)
    (rec,) = fake.requests
    assert rec.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert rec.body["contents"][0]["parts"][0]["text"] == "Put a person there."
    assert rec.body["generationConfig"]["imageConfig"] == {"aspectRatio": "4:3"}


def test_thought_parts_are_skipped_even_when_last_image_is_final(fake, make):
    fake.thoughts = True
    out = make().transfer(robot_image())
    assert out.mean() > 60  # the thought image is all black
    fake.thoughts = False
    out2 = make().transfer(robot_image())
    assert np.abs(out.astype(int) - out2.astype(int)).mean() < 1


@pytest.mark.parametrize("w,h,expected", [(1280, 720, "16:9"), (640, 480, "4:3"), (480, 640, "3:4"),
                                          (512, 512, "1:1"), (848, 480, "16:9"), (720, 1280, "9:16"),
                                          (2560, 1080, "21:9"), (600, 400, "3:2")])
def test_aspect_ratio_choice(w, h, expected):
    assert nearest_aspect_ratio(w, h) == expected


@pytest.mark.parametrize("w,h,aspect", [(640, 360, "16:9"), (220, 200, "1:1")])
def test_aspect_sent_and_output_resized_to_input(fake, make, w, h, aspect):
    img = robot_image(w, h)
    out = make().transfer(img)
    assert out.shape == img.shape
    rec = fake.requests[-1]
    assert rec.body["generationConfig"]["imageConfig"]["aspectRatio"] == aspect
    sent = decode_b64_rgb(rec.body["contents"][0]["parts"][1]["inlineData"]["data"])
    if (w, h) == (220, 200):  # 1.1 is 10% off 1:1: sent centred on black borders, the region cut back out
        assert sent.shape[:2] == (220, 220) and sent[:10].max() == 0 and sent[-10:].max() == 0
    # Geometry is kept: the result is the inverted input, not a stretched or shifted one.
    assert np.abs(out.astype(int) - (255 - img.astype(int))).mean() < 15


def test_large_image_downscaled_to_fit_inline(fake, make, monkeypatch):
    img = (np.random.default_rng(0).integers(0, 256, (240, 320, 3))).astype(np.uint8)  # incompressible
    monkeypatch.setattr(gmod, "MAX_INLINE_BYTES", 120_000)
    out = make().transfer(img)
    assert out.shape == img.shape
    data = fake.requests[-1].body["contents"][0]["parts"][1]["inlineData"]["data"]
    assert len(data) < 120_000
    sent = decode_b64_rgb(data)
    assert sent.shape[1] < 320 and abs(sent.shape[1] / sent.shape[0] - 4 / 3) < 0.02


@pytest.mark.parametrize("mode,fragment", [("undecodable", "cannot be decoded"),
                                           ("wrong_aspect", r"240x320 \(aspect 0.750\) but 320x240 \(aspect 1.333"),
                                           ("tiny", "smaller than min_output_side_px=64"),
                                           ("no_image", "holds no image.*cannot do that")])
def test_image_validation(fake, make, mode, fragment):
    fake.image_mode, fake.out_short_side = mode, 240
    with pytest.raises(RemoteError, match=fragment) as ei:
        make().transfer(robot_image())
    assert ei.value.reason == Reason.BAD_RESPONSE and len(fake.requests) == 1
    assert "\n" not in str(ei.value) and len(str(ei.value)) < 600


@pytest.mark.parametrize("mode,fragment", [("image_safety", "finishReason IMAGE_SAFETY.*can't edit"),
                                           ("prompt_blocked", "blockReason PROHIBITED_CONTENT")])
def test_safety_block(fake, make, mode, fragment):
    fake.image_mode = mode
    with pytest.raises(RemoteError, match=fragment) as ei:
        make().transfer(robot_image())
    assert ei.value.reason == Reason.CONTENT_BLOCKED and len(fake.requests) == 1


@pytest.mark.parametrize("status,reason", [(401, Reason.AUTH), (403, Reason.PERMISSION), (404, Reason.NOT_FOUND),
                                           (400, Reason.BAD_REQUEST)])
def test_client_errors_fail_at_once(fake, make, status, reason):
    fake.inject(PATH, Reply(status, {"error": {"code": status, "message": f"nope {KEY}", "status": "X"}}), times=5)
    with pytest.raises(RemoteError) as ei:
        make().transfer(robot_image())
    assert ei.value.reason == reason and ei.value.status == status and len(fake.requests) == 1
    assert KEY not in str(ei.value) and KEY not in repr(ei.value)


def test_rejected_key_is_auth(fake, make, monkeypatch):
    monkeypatch.setenv(ENV, "wrong-key-abcdef")
    with pytest.raises(RemoteError, match="rejected") as ei:
        make().transfer(robot_image())
    assert ei.value.reason == Reason.AUTH and "wrong-key-abcdef" not in str(ei.value)


def test_429_retry_after_then_success(fake, make):
    fake.inject(PATH, Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0.05"}), times=2)
    t = make()
    out = t.transfer(robot_image())
    assert out.shape == (240, 320, 3) and len(fake.requests) == 3
    assert t.stats()["retries"] == 2 and t.stats()["calls"] == 3


def test_429_retried_out_is_rate_limited(fake, make):
    fake.inject(PATH, Reply(429, {"error": {"message": "quota"}}, headers={"Retry-After": "0"}), times=10)
    with pytest.raises(RemoteError) as ei:
        make(max_retries=2).transfer(robot_image())
    assert ei.value.reason == Reason.RATE_LIMITED and len(fake.requests) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_retried(fake, make, status):
    fake.inject(PATH, Reply(status, {"error": {"message": "backend busy"}}), times=2)
    assert make().transfer(robot_image()).shape == (240, 320, 3)
    assert len(fake.requests) == 3


def test_read_timeout(fake, make):
    fake.inject(PATH, Reply(200, {"candidates": []}, hang_s=1.0), times=5)
    t0 = time.monotonic()
    with pytest.raises(RemoteError) as ei:
        make(read_timeout_s=0.3, max_retries=1).transfer(robot_image())
    assert ei.value.reason == Reason.TIMEOUT and time.monotonic() - t0 < 3.0 and len(fake.requests) == 2


@pytest.mark.parametrize("reply,fragment", [(Reply(200, "{not json"), "not valid JSON"),
                                            (Reply(200, {"usageMetadata": {}}), "no candidates"),
                                            (Reply(200, {"candidates": [{"content": {"parts": "x"}}]}),
                                             "not a list")])
def test_malformed_replies(fake, make, reply, fragment):
    fake.inject(PATH, reply)
    with pytest.raises(RemoteError, match=fragment) as ei:
        make().transfer(robot_image())
    assert ei.value.reason == Reason.BAD_RESPONSE


def test_cache_hit_on_rerun(fake, make, tmp_path):
    img = robot_image()
    first = make(cache_dir=str(tmp_path)).transfer(img)
    again = make(cache_dir=str(tmp_path))
    second = again.transfer(img)
    assert np.array_equal(first, second) and len(fake.requests) == 1 and again.stats()["cache_hits"] == 1
    make(cache_dir=str(tmp_path), prompt="another prompt").transfer(img)
    make(cache_dir=str(tmp_path)).transfer(robot_image(320, 180))
    assert len(fake.requests) == 3


def test_cancel_during_slow_request(fake, make):
    fake.set_latency("generateContent", 5.0)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Canceled):
        make(read_timeout_s=10.0).transfer(robot_image(), cancel=cancel)
    assert time.monotonic() - t0 < 2.0


def test_canceled_before_start_sends_nothing(fake, make):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Canceled):
        make().transfer(robot_image(), cancel=cancel)
    assert fake.requests == []


def test_missing_key_is_auth_at_call_time(fake, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    t = GeminiImageTransfer(base_url=fake.base_url, cache_dir="")  # constructing never needs the key
    with pytest.raises(RemoteError, match="GEMINI_API_KEY or GOOGLE_API_KEY") as ei:
        t.transfer(robot_image())
    assert ei.value.reason == Reason.AUTH and fake.requests == []


def test_key_file(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    (tmp_path / "key").write_text(f"\n  {KEY}  \n")
    t = GeminiImageTransfer(base_url=fake.base_url, cache_dir="", api_key_file=str(tmp_path / "key"),
                            min_output_side_px=64)
    assert t.transfer(robot_image()).shape == (240, 320, 3)


def test_key_never_leaks(fake, make):
    texts = []
    t = make(max_retries=0)
    for reply in (Reply(401, {"error": {"message": f"bad key {KEY}"}}), Reply(500, f"boom {KEY}"),
                  Reply(400, {"error": {"message": f"API key not valid: {KEY}", "status": "INVALID_ARGUMENT"}}),
                  Reply(200, f"<html>{KEY}</html>")):
        fake.inject(PATH, reply)
        with pytest.raises(RemoteError) as ei:
            t.transfer(robot_image())
        texts += [str(ei.value), repr(ei.value), str(ei.value.args)]
    texts += [repr(t), str(t), str(t.stats())]
    assert all(KEY not in s for s in texts), [s for s in texts if KEY in s]
    assert all(KEY not in r.path and not r.query for r in fake.requests)


def test_bad_input_is_a_user_error(make):
    with pytest.raises(EmbodimentTransferError):
        make().transfer(np.zeros((240, 320), np.uint8))
    with pytest.raises(EmbodimentTransferError):
        make().transfer(np.zeros((8, 8, 3), np.uint8))


def test_bad_base_url_is_config(make):
    with pytest.raises(RemoteError) as ei:
        make(base_url="generativelanguage.googleapis.com").transfer(robot_image())
    assert ei.value.reason == Reason.CONFIG
