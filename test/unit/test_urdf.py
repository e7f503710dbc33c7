"""The G1 URDF built from the Menagerie MJCF (exoactor.g1.urdf): a well-formed tree whose joints are the
29 motors in Unitree order, whose meshes are the model's own files with their offsets, and which
MuJoCo loads back into the same kinematics and geometry."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest

from exoactor.g1.joints import G1_JOINT_NAMES
from exoactor.g1.model import check_joint_layout, joint_ranges_rad, robot_body_ids
from exoactor.g1.urdf import fixed_joint_transforms, g1_urdf, main
from exoactor.geometry import (matrix_to_quat_wxyz, matrix_to_rpy, quat_mul_wxyz, quat_rotate_wxyz,
                               quat_wxyz_to_matrix, rot_x, rot_y, rot_z)


@pytest.fixture(scope="module")
def urdf() -> str:
    return g1_urdf()


def _mujoco_from_urdf(urdf: str):
    """MuJoCo's URDF import, keeping visuals and absolute mesh paths (file:// is a ROS convention)."""
    ext = '<mujoco><compiler strippath="false" discardvisual="false" fusestatic="false"/></mujoco>'
    robot = ET.fromstring(urdf)
    robot.insert(0, ET.fromstring(ext))
    return mujoco.MjModel.from_xml_string(ET.tostring(robot, encoding="unicode").replace("file://", ""))


def test_urdf_is_one_tree_of_the_models_bodies(urdf, g1_model):
    robot = ET.fromstring(urdf)
    links = [link.get("name") for link in robot.findall("link")]
    joints = robot.findall("joint")
    assert links == [g1_model.body(b).name for b in robot_body_ids(g1_model)] and len(set(links)) == len(links)
    children = [j.find("child").get("link") for j in joints]
    assert len(children) == len(set(children)) == len(links) - 1
    for j in joints:
        assert j.find("parent").get("link") in links and j.find("child").get("link") in links
    assert [name for name in links if name not in children] == ["pelvis"]  # one root: the floating base
    materials = {m.get("name") for m in robot.findall("material")}
    assert all(v.find("material").get("name") in materials for v in robot.iter("visual"))


def test_urdf_joints_are_the_29_motors_in_unitree_order_with_the_models_limits(urdf, g1_model):
    joints = [j for j in ET.fromstring(urdf).findall("joint") if j.get("type") == "revolute"]
    assert tuple(j.get("name") for j in joints) == G1_JOINT_NAMES
    lo_hi = np.array([[float(j.find("limit").get(k)) for k in ("lower", "upper")] for j in joints])
    np.testing.assert_allclose(lo_hi, joint_ranges_rad(g1_model), atol=1e-9)
    assert float(joints[3].find("limit").get("effort")) == 139.0  # left knee
    assert all(float(j.find("limit").get("velocity")) > 0 for j in joints)


def test_urdf_meshes_are_the_models_files_with_their_offsets(urdf):
    robot = ET.fromstring(urdf)
    files = [m.get("filename") for m in robot.iter("mesh")]
    assert files and all(f.startswith("file:///") and Path(f[len("file://"):]).is_file() for f in files)
    assert not any("/work/main/" in f for f in files)  # referenced where the model lives, never copied here
    torso = robot.find("./link[@name='torso_link']")
    visuals = {v.find("geometry/mesh").get("filename").rsplit("/", 1)[-1]: v for v in torso.findall("visual")}
    assert {"torso_link_rev_1_0.STL", "head_link.STL", "logo_link.STL"} <= set(visuals)
    for name in ("head_link.STL", "logo_link.STL"):
        xyz = [float(v) for v in visuals[name].find("origin").get("xyz").split()]
        np.testing.assert_allclose(xyz, [0.0039635, 0.0, -0.044], atol=1e-9)
    hand = robot.find("./link[@name='left_wrist_yaw_link']")
    assert len(hand.findall("visual")) == 2  # the wrist and the rubber hand
    # collision primitives survive too: foot spheres, shoulder cylinders
    assert len(robot.findall("./link[@name='left_ankle_roll_link']/collision/geometry/sphere")) == 4
    assert robot.findall("./link[@name='left_shoulder_pitch_link']/collision/geometry/cylinder")


def test_urdf_loads_in_mujoco_with_the_same_kinematics_and_geometry(urdf, g1_model):
    m = _mujoco_from_urdf(urdf)
    check_joint_layout(m)  # the 29 hinges, Unitree motor order
    assert m.njnt == 29 and m.nmesh == g1_model.nmesh
    assert m.body_mass.sum() == pytest.approx(g1_model.body_mass.sum())
    d, dr = mujoco.MjData(m), mujoco.MjData(g1_model)
    q = np.random.default_rng(0).uniform(*joint_ranges_rad(g1_model).T)
    d.qpos[:] = q
    dr.qpos[:7] = [0, 0, 0, 1, 0, 0, 0]  # the URDF's root sits at the origin
    dr.qpos[7:7 + 29] = q
    mujoco.mj_kinematics(m, d)
    mujoco.mj_kinematics(g1_model, dr)
    for b in robot_body_ids(g1_model):
        name = g1_model.body(b).name
        np.testing.assert_allclose(d.xpos[m.body(name).id], dr.xpos[b], atol=1e-6, err_msg=name)
        np.testing.assert_allclose(d.xmat[m.body(name).id], dr.xmat[b], atol=1e-6, err_msg=name)

    def mesh_geoms(model, data):
        """(mesh file, body) -> world positions of its geoms (MuJoCo recentres meshes the same way in both)."""
        out = {}
        for g in range(model.ngeom):
            if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH:
                path = model.paths[model.mesh_pathadr[model.geom_dataid[g]]:].split(b"\0", 1)[0]
                key = (Path(path.decode()).name, model.body(model.geom_bodyid[g]).name)
                out.setdefault(key, []).append(data.geom_xpos[g])
        return {k: np.sort(np.array(v), axis=0) for k, v in out.items()}

    a, b = mesh_geoms(m, d), mesh_geoms(g1_model, dr)
    assert a.keys() == b.keys() and ("head_link.STL", "torso_link") in a
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=str(key))


def test_fixed_joints_give_static_transforms():
    urdf = """<robot name="r"><link name="a"/><link name="b"/><link name="c"/>
      <joint name="ab" type="fixed"><origin xyz="0.1 0 0.2" rpy="0.3 -0.2 1.0"/>
        <parent link="a"/><child link="b"/></joint>
      <joint name="bc" type="revolute"><parent link="b"/><child link="c"/><axis xyz="0 0 1"/></joint></robot>"""
    [(parent, child, xyz, quat)] = fixed_joint_transforms(urdf)
    assert (parent, child) == ("a", "b")
    np.testing.assert_allclose(xyz, [0.1, 0, 0.2])
    np.testing.assert_allclose(quat_wxyz_to_matrix(quat), rot_z(1.0) @ rot_y(-0.2) @ rot_x(0.3), atol=1e-12)
    assert fixed_joint_transforms("<robot name='r'/>") == []


def test_rpy_round_trip():
    for roll, pitch, yaw in np.random.default_rng(1).uniform(-1.5, 1.5, (20, 3)):
        r = rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)
        np.testing.assert_allclose(matrix_to_rpy(r), [roll, pitch, yaw], atol=1e-12)


def test_quaternion_product_and_rotation_match_matrices():
    rng = np.random.default_rng(2)
    rots = [rot_z(a) @ rot_y(b) @ rot_x(c) for a, b, c in rng.uniform(-3, 3, (10, 3))]
    qa, qb = matrix_to_quat_wxyz(np.array(rots[:5])), matrix_to_quat_wxyz(np.array(rots[5:]))
    np.testing.assert_allclose(quat_wxyz_to_matrix(quat_mul_wxyz(qa, qb)), np.array(rots[:5]) @ np.array(rots[5:]),
                               atol=1e-12)
    v = rng.normal(size=(5, 3))
    np.testing.assert_allclose(quat_rotate_wxyz(qa, v), np.einsum("nij,nj->ni", np.array(rots[:5]), v), atol=1e-12)


def test_command_line_writes_the_urdf(tmp_path, urdf):
    out = tmp_path / "g1.urdf"
    assert main(["-o", str(out)]) == 0
    assert out.read_text() == urdf
