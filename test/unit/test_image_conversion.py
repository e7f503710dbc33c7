"""sensor_msgs/Image <-> RGB arrays (exoactor.nodes.images): cv_bridge where installed, the numpy
conversion otherwise, with the same results and the same errors."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from exoactor.nodes import images


@pytest.fixture
def no_bridge(monkeypatch):
    """The fallback path, as on a machine without cv_bridge (the lookup itself finds nothing)."""
    monkeypatch.setitem(sys.modules, "cv_bridge", None)  # import raises ImportError
    images.cv_bridge.cache_clear()
    yield
    images.cv_bridge.cache_clear()


def _raw(encoding: str, pixels: np.ndarray, pad: int = 0) -> Image:
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    msg = Image(height=h, width=w, encoding=encoding, step=rows.shape[1] + pad)
    msg.data = np.hstack([rows, np.full((h, pad), 7, np.uint8)]).tobytes()
    return msg


def test_fallback_round_trip_and_every_encoding(no_bridge):
    assert images.cv_bridge() is None
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    msg = images.image_to_msg(rgb, Time(sec=3), "cam")
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.header.frame_id, msg.header.stamp.sec) == \
        ("rgb8", 4, 5, 15, "cam", 3)
    np.testing.assert_array_equal(images.msg_to_image(msg), rgb)
    np.testing.assert_array_equal(images.msg_to_image(_raw("bgr8", rgb[..., ::-1], pad=3)), rgb)
    alpha = np.dstack([rgb, np.full((4, 5), 9, np.uint8)])
    np.testing.assert_array_equal(images.msg_to_image(_raw("rgba8", alpha)), rgb)
    np.testing.assert_array_equal(images.msg_to_image(_raw("bgra8", np.dstack([rgb[..., ::-1], alpha[..., 3]]))), rgb)
    gray = rgb[..., 0]
    np.testing.assert_array_equal(images.msg_to_image(_raw("mono8", gray, pad=1)), np.dstack([gray] * 3))


@pytest.mark.parametrize("encoding,h,w,step,size,error", [
    ("16UC1", 2, 2, 4, 8, "unsupported image encoding"),
    ("rgb8", 0, 2, 6, 0, "empty image"),
    ("rgb8", 2, 2, 6, 11, "shorter than height"),
    ("rgb8", 2, 2, 5, 12, "shorter than height")])
def test_fallback_rejects_bad_images(no_bridge, encoding, h, w, step, size, error):
    msg = Image(height=h, width=w, encoding=encoding, step=step)
    msg.data = bytes(size)
    with pytest.raises(ValueError, match=error):
        images.msg_to_image(msg)


class _FakeBridge:
    def __init__(self):
        self.calls = []

    def cv2_to_imgmsg(self, cvim, encoding):
        self.calls.append(("to_msg", encoding))
        h, w = cvim.shape[:2]
        return Image(height=h, width=w, encoding=encoding, step=w * 3, data=cvim.tobytes())

    def imgmsg_to_cv2(self, msg, desired_encoding):
        self.calls.append(("to_cv2", desired_encoding))
        return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def test_cv_bridge_is_used_where_installed(monkeypatch):
    bridge = _FakeBridge()
    monkeypatch.setattr(images, "cv_bridge", lambda: bridge)
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = images.image_to_msg(rgb, Time(sec=1), "cam")
    assert msg.header.frame_id == "cam" and msg.header.stamp.sec == 1
    np.testing.assert_array_equal(images.msg_to_image(msg), rgb)
    assert bridge.calls == [("to_msg", "rgb8"), ("to_cv2", "rgb8")]
    msg.encoding = "16UC1"  # the same checks run first
    with pytest.raises(ValueError, match="unsupported image encoding"):
        images.msg_to_image(msg)
