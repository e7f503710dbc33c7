"""What rviz2 needs, from the simulator and camera processes as the launch file starts them: TF from
``world`` to the pelvis and every link (matching MuJoCo's kinematics), ``world`` -> the camera's optical
frame from its calibration with CameraInfo and images in that frame, the URDF on /robot_description
(transient local) naming the TF links, and mesh markers for every visual geom (head, logo, hands)."""
from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest
import rclpy
import yaml
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from exoactor.g1.joints import G1_JOINT_NAMES
from exoactor.g1.model import load_g1_model
from exoactor.geometry import PinholeCamera, quat_wxyz_to_matrix
from exoactor.launcher import Graph, GraphSpec, build_graph, config_dir
from exoactor.nodes.qos import LATCHED_QOS
from fakes.domains import domain_id
from fakes.spinning import spin_in_thread, stop_spinning

CAMERA_FRAME = "exocentric_camera_optical"


class Listener:
    """Latest TF per child frame (/tf and /tf_static) and the other topics rviz2 reads."""

    def __init__(self, ctx):
        self.node = rclpy.create_node("exoactor_test_rviz", context=ctx)
        self.lock = threading.Lock()
        self.tf: dict[str, object] = {}
        self.static: dict[str, object] = {}
        self.tf_by_stamp: dict[tuple, TFMessage] = {}
        self.joints_by_stamp: dict[tuple, JointState] = {}
        self.latest: dict[str, object] = {}
        sub = self.node.create_subscription
        sub(TFMessage, "/tf", lambda m: self._on_tf(m, self.tf), 100)
        sub(TFMessage, "/tf_static", lambda m: self._on_tf(m, self.static), LATCHED_QOS)
        sub(JointState, "/joint_states", self._on_joints, 100)
        # CameraInfo as rviz2's Camera display subscribes: volatile (it needs one with the images)
        for topic, kind, qos in (("/robot_description", String, LATCHED_QOS),
                                 ("/exoactor/camera/camera_info", CameraInfo, 5),
                                 ("/exoactor/camera/image_raw", Image, 1), ("/g1_sim/robot_markers", MarkerArray, 1)):
            sub(kind, topic, lambda m, t=topic: self._keep(t, m), qos)
        self.executor = SingleThreadedExecutor(context=ctx)
        self.executor.add_node(self.node)
        self._thread = spin_in_thread(self.executor, ExternalShutdownException)

    def _on_tf(self, msg, store):
        with self.lock:
            for t in msg.transforms:
                store[t.child_frame_id] = t
            stamp = (msg.transforms[0].header.stamp.sec, msg.transforms[0].header.stamp.nanosec)
            if store is self.tf and any(t.child_frame_id == "pelvis" for t in msg.transforms):
                self.tf_by_stamp[stamp] = msg
                for old in sorted(self.tf_by_stamp)[:-200]:
                    del self.tf_by_stamp[old]

    def _on_joints(self, msg):
        with self.lock:
            self.joints_by_stamp[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
            for old in sorted(self.joints_by_stamp)[:-200]:
                del self.joints_by_stamp[old]

    def _keep(self, topic, msg):
        with self.lock:
            self.latest[topic] = msg

    def wait(self, ready, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if ready(self):
                    return True
            time.sleep(0.2)
        return False

    def close(self):
        stop_spinning(self.executor, self._thread, self.node)


def _pose(t) -> tuple[np.ndarray, np.ndarray]:
    """(position, rotation matrix) of a TransformStamped."""
    tr, r = t.transform.translation, t.transform.rotation
    return np.array([tr.x, tr.y, tr.z]), quat_wxyz_to_matrix([r.w, r.x, r.y, r.z])


def _in_world(frames: dict, child: str) -> tuple[np.ndarray, np.ndarray]:
    """Compose TF from ``child`` up to ``world`` (fails if the chain is broken)."""
    pos, rot = np.zeros(3), np.eye(3)
    for _ in range(64):
        if child == "world":
            return pos, rot
        assert child in frames, f"no TF for frame {child!r}"
        p, r = _pose(frames[child])
        pos, rot = p + r @ pos, r @ rot
        child = frames[child].header.frame_id
    raise AssertionError("TF chain does not end in world")


@pytest.fixture(scope="module")
def rviz_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rviz")
    domain = str(domain_id(25))
    spec = build_graph()
    g = Graph(GraphSpec([n for n in spec.nodes if n.name in ("g1_sim", "camera")], spec.arguments),
              log_dir=root / "logs", env={"ROS_DOMAIN_ID": domain}).start()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(domain))
    listener = Listener(ctx)
    try:
        everything = ("/robot_description", "/exoactor/camera/camera_info", "/exoactor/camera/image_raw",
                      "/g1_sim/robot_markers")
        ok = listener.wait(lambda s: all(t in s.latest for t in everything) and CAMERA_FRAME in s.static
                           and set(s.tf_by_stamp) & set(s.joints_by_stamp), 120)
        assert not g.dead(), f"nodes died: {g.dead()}"
        assert ok, f"missing after 120 s: {[t for t in everything if t not in listener.latest]}, " \
                   f"static TF {sorted(listener.static)}"
        yield listener
    finally:
        listener.close()
        rclpy.try_shutdown(context=ctx)
        g.stop()
        for log in sorted((root / "logs").glob("*.log")):
            print(f"===== {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))


def test_tf_tree_has_every_urdf_link_with_mujoco_kinematics(rviz_inputs):
    s = rviz_inputs
    with s.lock:
        urdf = ET.fromstring(s.latest["/robot_description"].data)
        stamp = max(set(s.tf_by_stamp) & set(s.joints_by_stamp))
        frames = {t.child_frame_id: t for t in s.tf_by_stamp[stamp].transforms}
        joints = s.joints_by_stamp[stamp]
    assert frames["pelvis"].header.frame_id == "world"
    links = {link.get("name") for link in urdf.iter("link")}
    parents = {j.find("child").get("link"): j.find("parent").get("link") for j in urdf.iter("joint")}
    assert links == set(frames) and len(links) == 30
    for child, parent in parents.items():
        assert frames[child].header.frame_id == parent
    # Composed TF == MuJoCo forward kinematics at the published joint state and base pose.
    assert list(joints.name) == list(G1_JOINT_NAMES)
    model = load_g1_model(with_floor=False)
    data = mujoco.MjData(model)
    tr, rq = frames["pelvis"].transform.translation, frames["pelvis"].transform.rotation
    data.qpos[:7] = [tr.x, tr.y, tr.z, rq.w, rq.x, rq.y, rq.z]
    data.qpos[7:7 + 29] = joints.position
    mujoco.mj_kinematics(model, data)
    for link in ("pelvis", "torso_link", "left_ankle_roll_link", "right_wrist_yaw_link", "left_elbow_link"):
        pos, rot = _in_world(frames, link)
        b = model.body(link).id
        np.testing.assert_allclose(pos, data.xpos[b], atol=1e-6)
        np.testing.assert_allclose(rot, data.xmat[b].reshape(3, 3), atol=1e-6)


def test_camera_optical_frame_in_tf_matches_its_calibration(rviz_inputs):
    s = rviz_inputs
    with s.lock:
        tf, info, image = s.static[CAMERA_FRAME], s.latest["/exoactor/camera/camera_info"], \
            s.latest["/exoactor/camera/image_raw"]
    assert tf.header.frame_id == "world"
    assert info.header.frame_id == CAMERA_FRAME and image.header.frame_id == CAMERA_FRAME
    sim = yaml.safe_load((config_dir() / "params.yaml").read_text())["g1_sim"]["ros__parameters"]
    cam = PinholeCamera.look_at(sim["camera.width"], sim["camera.height"], sim["camera.fovy_deg"],
                                sim["camera.eye_m"], sim["camera.target_m"])
    pos, rot = _pose(tf)
    np.testing.assert_allclose(pos, cam.pos_world_m, atol=1e-9)
    np.testing.assert_allclose(rot, cam.rot_world_from_optical, atol=1e-9)  # optical: x right, y down, z forward
    assert rot[:, 1] @ [0, 0, 1] < 0  # image "down" points down in the world
    assert (info.width, info.height) == (cam.width, cam.height) and info.k[0] == pytest.approx(cam.fx)


def test_mesh_markers_have_every_visual_geom_with_its_offset(rviz_inputs):
    s = rviz_inputs
    with s.lock:
        markers = s.latest["/g1_sim/robot_markers"].markers
        urdf = ET.fromstring(s.latest["/robot_description"].data)
    meshes = [m.mesh_resource.rsplit("/", 1)[-1] for m in markers]
    assert len(markers) == len(urdf.findall("./link/visual"))
    for name in ("head_link.STL", "logo_link.STL", "left_rubber_hand.STL", "right_rubber_hand.STL", "pelvis.STL"):
        assert name in meshes
    assert all(m.header.frame_id == "world" and m.mesh_resource.startswith("file://") for m in markers)
    at = {n: np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]) for n, m in zip(meshes, markers)}
    # head and logo sit 4.4 cm from the torso link's origin (their geom offset), not at it
    assert np.linalg.norm(at["head_link.STL"] - at["torso_link_rev_1_0.STL"]) == pytest.approx(0.04418, abs=1e-4)


def test_camera_from_a_file_publishes_its_calibration_as_tf_and_info_with_every_image(tmp_path):
    import cv2

    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 80, np.uint8))
    eye, target = [1.0, -2.0, 1.5], [0.0, 0.0, 1.0]
    [camera] = [n for n in build_graph().nodes if n.name == "camera"]
    camera.argv += ["-p", "source:=image", "-p", f"path:={image}", "-p", "rate_hz:=10.0", "-p", "frame_id:=my_cam",
                    "-p", f"calibration.eye_m:={eye}", "-p", f"calibration.target_m:={target}"]
    domain = str(domain_id(50))
    g = Graph(GraphSpec([camera]), log_dir=tmp_path / "logs", env={"ROS_DOMAIN_ID": domain}).start()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(domain))
    listener = Listener(ctx)
    infos: list = []
    listener.node.create_subscription(CameraInfo, "/exoactor/camera/camera_info", infos.append, 5)
    try:
        assert listener.wait(lambda s: "my_cam" in s.static and len(infos) >= 3, 60), \
            (tmp_path / "logs" / "camera.log").read_text()
        with listener.lock:
            tf, img = listener.static["my_cam"], listener.latest["/exoactor/camera/image_raw"]
        cam = PinholeCamera.look_at(160, 120, 50.0, eye, target)
        pos, rot = _pose(tf)
        np.testing.assert_allclose(pos, eye, atol=1e-9)
        np.testing.assert_allclose(rot, cam.rot_world_from_optical, atol=1e-9)
        assert img.header.frame_id == "my_cam" and all(i.header.frame_id == "my_cam" for i in infos)
        assert len({(i.header.stamp.sec, i.header.stamp.nanosec) for i in infos}) == len(infos)  # one per image
    finally:
        listener.close()
        rclpy.try_shutdown(context=ctx)
        g.stop()
