"""g1_sim: the MuJoCo G1 standing in for the robot.

Subscribes ``/lowcmd`` (unitree_hg/LowCmd; commands with a wrong CRC are dropped, as on the
robot, and so are malformed ones: wrong size or encoding, NaN/Inf, negative gains; each is counted
and logged, none can raise out of the callback), applies the motor PD law every physics step in
real time, and publishes ``/lowstate``
(with CRC), ``/joint_states``, ``/tf`` (world -> pelvis and every link in its parent link, at the
joint-state rate), ``/robot_description`` (URDF, transient local, as robot_state_publisher does),
robot mesh markers for rviz2 (every visual geom), and the exocentric camera (image, camera_info,
and the optical frame's pose in the world; its TF is published by the camera node).
"""
from __future__ import annotations

import collections
import functools
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from exoactor.control.balance import BaseOdometry
from exoactor.g1.joints import G1_JOINT_NAMES
from exoactor.g1.model import ROOT_BODY, robot_body_ids
from exoactor.g1.urdf import fixed_joint_transforms, geom_parts, urdf_from_model
from exoactor.geometry import matrix_to_rpy, quat_mul_wxyz, quat_rotate_wxyz, quat_wxyz_to_matrix
from exoactor.nodes.calibration_msgs import camera_info_msg, camera_pose_msg
from exoactor.nodes.conversions import odometry_to_msg
from exoactor.nodes.frames import TransformStream, tf_message
from exoactor.nodes.images import image_to_msg
from exoactor.nodes.params import ConfigError, declare, declare_look_at
from exoactor.nodes.qos import LATCHED_QOS
from exoactor.nodes.spin import join_all, spin_node
from exoactor.nodes.unitree_io import LowCmdReader, LowStateWriter, declare_unitree_qos, import_unitree_hg
from exoactor.realtime import MAX_RT_PRIORITY, make_named_threads_realtime, make_thread_realtime, normal_priority
from exoactor.sim.g1_sim import ElasticBand, G1Simulator

RENDERER_START_TIMEOUT_S = 60.0
"""How long the camera thread may take to create its OpenGL context before the node gives up."""

_MARKER_TYPES = {"mesh": Marker.MESH_RESOURCE, "box": Marker.CUBE, "sphere": Marker.SPHERE, "cylinder": Marker.CYLINDER}



class _LagReport:
    """Says (every REPORT_S at most) when the physics fell behind real time, and by how much: beyond
    ``max_catch_up_steps`` that time is dropped (simulated time runs slower than real time)."""

    LATE_STEPS = 5
    """Behind by more than this many steps (10 ms at 2 ms) counts."""
    REPORT_S = 5.0

    def __init__(self, dt_s: float, logger):
        self.dt_s, self.logger = dt_s, logger
        self.worst = self.count = 0
        self.total = 0
        self._next = self.REPORT_S

    def record(self, behind: int, now_s: float) -> None:
        if behind > self.LATE_STEPS:
            self.count += 1
            self.total += 1
            self.worst = max(self.worst, behind)
        if now_s >= self._next:
            if self.count:
                self.logger.warning(f"physics fell behind real time {self.count} time(s) in the last "
                                    f"{self.REPORT_S:.0f} s, by up to {self.worst * self.dt_s * 1e3:.0f} ms "
                                    f"({self.total} since start-up; simulated time slowed down): this machine is "
                                    "overloaded")
            self.worst = self.count = 0
            self._next = now_s + self.REPORT_S

class G1SimNode(Node):
    def __init__(self):
        super().__init__("g1_sim")
        p = functools.partial(declare, self)
        self.lowstate_rate = p("lowstate_rate_hz", 500.0, "LowState publish rate (Hz); the G1 publishes at 500 Hz")
        self.joint_state_rate = p("joint_state_rate_hz", 50.0, "JointState and TF publish rate (Hz)")
        self.camera_rate = p("camera_rate_hz", 1.0, "exocentric camera frame rate (Hz); 0 disables rendering "
                                                    "(each frame is ~0.2 s of CPU with software OpenGL)")
        self.max_catch_up = p("max_catch_up_steps", 2, "when the physics falls behind real time (an overloaded "
                              "machine), at most this many steps run at once and the rest of the lost time is "
                              "dropped: the simulation slows down instead of jumping ahead, since a jump applies one "
                              "command for many steps, as to a robot whose controller stalled")
        if self.max_catch_up < 1:
            raise ConfigError(f"parameter 'max_catch_up_steps' must be >= 1, got {self.max_catch_up}")
        self.marker_rate = p("marker_rate_hz", 5.0, "robot mesh MarkerArray rate for rviz2 (Hz); 0 disables")
        self.rt_priority = p("rt_priority", 80, "SCHED_FIFO priority (1-98) of the physics thread, the simulated "
                             "robot's own real-time loop, where permitted (CAP_SYS_NICE or an rtprio limit); 0 = off")
        if not 0 <= self.rt_priority < MAX_RT_PRIORITY:
            raise ConfigError(f"parameter 'rt_priority' must be 0 (off) or 1-{MAX_RT_PRIORITY - 1}, "
                              f"got {self.rt_priority}")
        mode_machine = p("mode_machine", 5, "mode_machine reported in LowState (5 = G1 29-DoF)")
        calibration = declare_look_at(self, "camera")
        band = ElasticBand(
            enabled=p("band.enabled", True, "start with the robot hanging on an elastic band (a gantry); see gantry"),
            stiffness_n_m=p("band.stiffness_n_m", 200.0, "band stiffness (N/m)"),
            damping_n_s_m=p("band.damping_n_s_m", 100.0, "band damping (N s/m)"),
            anchor_world_m=np.array(p("band.anchor_m", [0.0, 0.0, 3.0], "band anchor in the world (m)")),
            length_m=p("band.length_m", 0.0, "band rest length (m); 0 = automatic: the band carries the robot's "
                       "weight at the start pose"))
        self.gantry = p("gantry", True, "true: the band carries the robot all the time; false: it is lowered (like a "
                        "real gantry) once a controller drives the legs, and the robot stands on its own")
        self.band_lower_delay_s = p("band.lower_delay_s", 1.0, "gantry false: seconds of leg commands before the band "
                                    "is lowered")
        self.band_lower_s = p("band.lower_s", 2.0, "gantry false: seconds over which the band's force fades to zero")
        self.odom_rate = p("odom_rate_hz", 100.0, "ground-truth odometry (nav_msgs/Odometry on g1_sim/odom) rate "
                           "(Hz); 0 disables")
        self.world_frame = p("world_frame", "world", "fixed frame of TF, markers and the camera pose")
        model_dir = p("model_dir", "", "folder with Menagerie's unitree_g1 files; '' = mujoco-menagerie package")
        description_file = p("robot_description_file", "", "URDF published on /robot_description (e.g. from your "
                             "description package); '' = generated from the simulated model (exoactor.g1.urdf)")
        self.publish_link_tf = p("publish_link_tf", True, "publish TF for every link below the pelvis; false when "
                                 "robot_state_publisher does it from /joint_states")
        self.camera = calibration.camera()
        self.sim = G1Simulator(band=band, model_dir=model_dir or None,
                               camera=self.camera if self.camera_rate > 0 else None)
        self._writer = LowStateWriter(mode_machine)
        LowCmd, LowState, _ = import_unitree_hg()
        lowcmd_qos, lowstate_qos = declare_unitree_qos(self, "lowcmd"), declare_unitree_qos(self, "lowstate")
        self.pub_lowstate = self.create_publisher(LowState, "lowstate", lowstate_qos)
        self.pub_joints = self.create_publisher(JointState, "joint_states", 10)
        self.pub_tf = self.create_publisher(TFMessage, "/tf", 10)
        self.pub_markers = self.create_publisher(MarkerArray, "g1_sim/robot_markers", 1)
        self.pub_image = self.create_publisher(Image, "g1_sim/exocentric/image_raw", 1)
        self.pub_info = self.create_publisher(CameraInfo, "g1_sim/exocentric/camera_info", LATCHED_QOS)
        self.pub_cam_pose = self.create_publisher(PoseStamped, "g1_sim/exocentric/pose", LATCHED_QOS)
        self.pub_description = self.create_publisher(String, "robot_description", LATCHED_QOS)
        self.pub_tf_static = self.create_publisher(TFMessage, "/tf_static", LATCHED_QOS)
        self._publish_description(description_file)
        links = self.sim.link_frames if self.publish_link_tf else []
        self._tf = TransformStream([(self.world_frame, ROOT_BODY), *links])
        self._reader = LowCmdReader()
        # /lowcmd on its own node, executor and (real-time) thread: the motors get their commands
        # however busy the rest of this process (camera, TF, markers) or the machine is.
        self._io_node = rclpy.create_node(f"{self.get_name()}_lowcmd", namespace=self.get_namespace(),
                                          context=self.context, use_global_arguments=False)
        self._io_node.create_subscription(LowCmd, self.resolve_topic_name("lowcmd"), self._on_lowcmd, lowcmd_qos,
                                          raw=True)
        self._io_executor = SingleThreadedExecutor(context=self.context)
        self._io_executor.add_node(self._io_node)
        self.dropped_lowcmds: collections.Counter[str] = collections.Counter()
        """LowCmds dropped by reason (bad CRC, malformed, non-finite values, negative gains)."""
        self._band_lowering = False
        self._reset_lock = threading.Lock()
        self.create_service(Trigger, "g1_sim/reset", self._on_reset)
        self.pub_odom = self.create_publisher(Odometry, "g1_sim/odom", qos_profile_sensor_data)
        self._mesh_markers = self._make_markers()
        self._stop = threading.Event()
        # The camera's GL context first: creating it holds the GIL for up to a second on a loaded
        # machine, which would stall the physics (and /lowstate) if it were already running.
        self._render_thread = threading.Thread(target=self._render_loop, name="camera", daemon=True)
        self._renderer_ready = threading.Event()
        self._renderer_error: BaseException | None = None
        if self.camera_rate > 0:
            self._render_thread.start()
            hint = "(MUJOCO_GL=egl|osmesa; or camera_rate_hz 0 to run without a camera)"
            if not self._renderer_ready.wait(RENDERER_START_TIMEOUT_S):
                self._stop.set()  # should the context still come up, the camera thread ends at once
                raise ConfigError(f"the camera's OpenGL context was not ready within {RENDERER_START_TIMEOUT_S:.0f} s "
                                  f"{hint}")
            if self._renderer_error is not None:
                raise ConfigError(f"cannot render the exocentric camera: {type(self._renderer_error).__name__}: "
                                  f"{self._renderer_error} {hint}")
        self._thread = threading.Thread(target=self._loop, name="physics", daemon=True)
        self._thread.start()
        self._io_thread = threading.Thread(target=self._spin_io, name="lowcmd", daemon=True)
        self._io_thread.start()

        cam_pose = PoseStamped()
        cam_pose.header.frame_id = self.world_frame
        cam_pose.header.stamp = self.get_clock().now().to_msg()
        cam_pose.pose = camera_pose_msg(self.camera)
        self.pub_cam_pose.publish(cam_pose)
        self.pub_info.publish(camera_info_msg(self.camera, cam_pose.header.stamp, "exocentric_camera_optical"))
        self.get_logger().info(f"G1 simulator running (dt {self.sim.timestep_s * 1e3:.1f} ms, band "
                               f"{('on (gantry)' if self.gantry else 'on until the legs are driven') if band.enabled else 'off'}, camera {self.camera.width}x{self.camera.height}"
                               f" @ {self.camera_rate} Hz)")

    def _on_lowcmd(self, data: bytes) -> None:
        frame, why = self._reader.check(data)  # never raises
        if frame is None:
            self.dropped_lowcmds[why] += 1
            n = sum(self.dropped_lowcmds.values())
            if n in (1, 10, 100) or n % 1000 == 0:
                counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.dropped_lowcmds.items()))
                self.get_logger().warn(f"dropped a LowCmd ({why}), as the robot would; {n} so far ({counts})")
            return
        self.sim.set_command(frame)
        if not self.gantry and not self._band_lowering and np.any(frame.kp[:12] > 0):
            self._band_lowering = True
            self.sim.lower_band(self.band_lower_delay_s, self.band_lower_s)
            self.get_logger().info(f"legs are driven: lowering the band in {self.band_lower_delay_s:.1f} s "
                                   f"(over {self.band_lower_s:.1f} s); the robot stands on its own")

    def _on_reset(self, _req, res):
        with self._reset_lock:
            self.sim.reset()
            self._band_lowering = False
        res.success, res.message = True, "robot reset to the stand pose, hanging on the band, motors off"
        self.get_logger().info(res.message)
        return res

    def _spin_io(self) -> None:
        make_thread_realtime(max(0, self.rt_priority - 1))
        try:
            self._io_executor.spin()
        except Exception:  # noqa: BLE001 - the context is shut down under it at exit
            if self.context.ok() and not self._stop.is_set():
                raise

    def _loop(self) -> None:
        # The DDS threads that carry /lowcmd in and /lowstate out real-time too; the GIL handed over
        # every 0.5 ms (the camera thread stays at normal priority: rendering is long CPU work).
        sys.setswitchinterval(0.0005)
        dds = make_named_threads_realtime("dds.", max(0, self.rt_priority - 2))
        self.get_logger().info(f"physics thread: {make_thread_realtime(self.rt_priority)}; DDS threads: {dds}")
        try:
            self._physics()
        except Exception:  # publishing fails once the context is shut down
            if self.context.ok():
                raise

    def _physics(self) -> None:
        dt = self.sim.timestep_s
        t_start = time.monotonic()
        sim_steps = 0
        periods = {"lowstate": 1.0 / self.lowstate_rate if self.lowstate_rate > 0 else None,
                   "joints": 1.0 / self.joint_state_rate if self.joint_state_rate > 0 else None,
                   "markers": 1.0 / self.marker_rate if self.marker_rate > 0 else None,
                   "odom": 1.0 / self.odom_rate if self.odom_rate > 0 else None}
        due = {k: 0.0 for k in periods}
        tick = 0
        lag = _LagReport(dt, self.get_logger())
        while not self._stop.is_set():
            now = time.monotonic() - t_start
            behind = int(now / dt) - sim_steps
            if behind > 0:
                lag.record(behind, now)
                n = min(behind, self.max_catch_up)
                self.sim.step(n)
                sim_steps += behind  # the rest is dropped: simulated time slows down
            lowstate_due = bool(periods["lowstate"]) and now >= due["lowstate"]
            joints_due = bool(periods["joints"]) and now >= due["joints"]
            st = self.sim.state() if lowstate_due or joints_due else None
            if lowstate_due:
                due["lowstate"] = now + periods["lowstate"]
                tick += 1
                r = quat_wxyz_to_matrix(st.imu_quat_wxyz)
                self.pub_lowstate.publish(self._writer.build(tick, st.q_rad, st.dq_rad_s, st.ddq_rad_s2, st.tau_nm,
                                                             st.imu_quat_wxyz, st.imu_gyro_rad_s, st.imu_acc_m_s2,
                                                             matrix_to_rpy(r)))
            if joints_due:
                due["joints"] = now + periods["joints"]
                self._publish_joints_tf(st)
            if periods["odom"] and now >= due["odom"]:
                due["odom"] = now + periods["odom"]
                o = st if st is not None else self.sim.state()
                self.pub_odom.publish(odometry_to_msg(
                    BaseOdometry(o.base_pos_world_m, o.base_quat_wxyz, o.base_lin_vel_world_m_s,
                                 o.base_ang_vel_body_rad_s), self.get_clock().now().to_msg(), self.world_frame,
                    ROOT_BODY))
            if periods["markers"] and now >= due["markers"]:
                due["markers"] = now + periods["markers"]
                self._publish_markers()
            next_t = min([due[k] for k in due if periods[k]] + [(sim_steps + 1) * dt])
            sleep = next_t - (time.monotonic() - t_start)
            if sleep > 0:
                time.sleep(sleep)

    def _render_loop(self) -> None:
        """Camera frames on their own thread, so rendering never stalls the 500 Hz physics."""
        with normal_priority():  # never real-time: the renderer's worker threads inherit this
            try:
                self.sim.open_renderer()
            except Exception as e:  # noqa: BLE001 - reported by the constructor, which waits for this
                self._renderer_error = e
                return
            finally:
                self._renderer_ready.set()
            self._render_frames()

    def _render_frames(self) -> None:
        period = 1.0 / self.camera_rate
        try:
            while not self._stop.is_set():
                t = time.monotonic()
                stamp = self.get_clock().now().to_msg()
                self.pub_image.publish(image_to_msg(self.sim.render(), stamp, "exocentric_camera_optical"))
                self._stop.wait(max(0.0, period - (time.monotonic() - t)))
        except Exception:  # publishing fails once the context is shut down
            if self.context.ok():
                raise
        finally:
            self.sim.close()  # the GL context belongs to this thread

    def _publish_description(self, path: str) -> None:
        """The URDF on /robot_description; static TF for its fixed joints (links the simulation does not move)."""
        if path:
            try:
                with open(os.path.expanduser(path)) as f:
                    urdf = f.read()
                if ET.fromstring(urdf).tag != "robot":
                    raise ET.ParseError("the root element is not <robot>")
            except (OSError, ET.ParseError) as e:
                raise ConfigError(f"parameter 'robot_description_file': cannot use {path!r} as a URDF: {e}") from None
        else:
            urdf = urdf_from_model(self.sim.model, self.sim.mesh_paths)
        self.pub_description.publish(String(data=urdf))
        fixed = fixed_joint_transforms(urdf)
        if self.publish_link_tf and fixed:
            self.pub_tf_static.publish(tf_message(self.get_clock().now().to_msg(), fixed))

    def _publish_joints_tf(self, st) -> None:
        stamp = self.get_clock().now().to_msg()
        js = JointState()
        js.header.stamp = stamp
        js.name = list(G1_JOINT_NAMES)
        js.position, js.velocity, js.effort = st.q_rad.tolist(), st.dq_rad_s.tolist(), st.tau_nm.tolist()
        self.pub_joints.publish(js)
        pos, quat = st.base_pos_world_m[None], st.base_quat_wxyz[None]
        if self.publish_link_tf:
            link_pos, link_quat = self.sim.link_transforms()
            pos, quat = np.vstack([pos, link_pos]), np.vstack([quat, link_quat])
        self.pub_tf.publish(self._tf.fill(stamp, pos, quat))

    def _make_markers(self) -> tuple[list[Marker], list[str], np.ndarray, np.ndarray]:
        """One marker per visual geom of the robot (meshes: the model's own files): the markers, their
        bodies, and their poses in those bodies (positions (n, 3) m, quaternions (n, 4) w, x, y, z)."""
        m = self.sim.model
        markers, bodies, poses = [], [], []
        for part in geom_parts(m, self.sim.mesh_paths, robot_body_ids(m), roles=("visual",)):
            if part.shape == "mesh" and not os.path.isfile(part.mesh_file):
                continue
            mk = Marker()
            mk.ns, mk.id, mk.type, mk.action = "g1", len(markers), _MARKER_TYPES[part.shape], Marker.ADD
            mk.header.frame_id = self.world_frame
            extent = {"mesh": part.size, "box": 2 * part.size,
                      "sphere": 2 * part.size[[0, 0, 0]], "cylinder": 2 * part.size[[0, 0, 1]]}[part.shape]
            mk.scale.x, mk.scale.y, mk.scale.z = (float(v) for v in extent)
            if part.shape == "mesh":
                mk.mesh_resource = f"file://{os.path.abspath(part.mesh_file)}"
            mk.color.r, mk.color.g, mk.color.b, mk.color.a = (float(v) for v in part.rgba)
            markers.append(mk)
            bodies.append(part.body)
            poses.append(np.concatenate([part.pos_m, part.quat_wxyz]))
        poses = np.array(poses).reshape(-1, 7)
        return markers, bodies, poses[:, :3], poses[:, 3:]

    def _publish_markers(self) -> None:
        markers, bodies, pos_in_body, quat_in_body = self._mesh_markers
        if not markers:
            return
        stamp = self.get_clock().now().to_msg()
        poses = self.sim.body_poses()
        body_pos = np.array([poses[b][0] for b in bodies])
        body_quat = np.array([poses[b][1] for b in bodies])
        pos = body_pos + quat_rotate_wxyz(body_quat, pos_in_body)
        quat = quat_mul_wxyz(body_quat, quat_in_body)
        for mk, p, q in zip(markers, pos.tolist(), quat.tolist()):
            mk.header.stamp = stamp
            mk.pose.position.x, mk.pose.position.y, mk.pose.position.z = p
            o = mk.pose.orientation
            o.w, o.x, o.y, o.z = q
        self.pub_markers.publish(MarkerArray(markers=markers))

    def close(self) -> None:
        self._stop.set()
        self._io_executor.shutdown(timeout_sec=1.0)
        # none may be inside MuJoCo, EGL or rclpy when the process exits
        join_all([self._thread, self._render_thread, self._io_thread])
        self._io_node.destroy_node()


def main(args=None) -> None:
    spin_node(G1SimNode, args, threads=1)


if __name__ == "__main__":
    main()
