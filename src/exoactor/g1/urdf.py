"""A URDF of the G1 built from the loaded MuJoCo model (Menagerie's ``g1.xml``), for ``robot_description``.

    python -m exoactor.g1.urdf [-o g1.urdf]     # e.g. for robot_state_publisher with a real G1

Links are the model's bodies below ``pelvis`` (the link names of Unitree's own URDF), joints its
hinges (names, axes, position and torque limits from the model, in Unitree motor order), visuals
and collisions its geoms (groups 2 and 3, Menagerie's convention) with their offsets in the
body, colours and inertials. Meshes are referenced as ``file://`` URIs to the model's own files
(never copied). The floating base is not a URDF joint: the root link ``pelvis`` is placed in
``world`` by TF.
"""
from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import mujoco
import numpy as np

from exoactor.g1.model import (ROOT_BODY, RobotModelError, check_joint_layout, load_g1_spec, mesh_file_paths,
                               robot_body_ids)
from exoactor.geometry import matrix_to_quat_wxyz, matrix_to_rpy, quat_wxyz_to_matrix, rot_x, rot_y, rot_z

VISUAL_GROUP = 2
"""Geom group of visual geoms in Menagerie models."""
COLLISION_GROUP = 3
"""Geom group of collision geoms in Menagerie models."""
URDF_VELOCITY_LIMIT_RAD_S = 6.0
"""The MJCF has no joint speed limits but URDF requires one: the tracking controller's default speed
bound (``max_joint_velocity_rad_s``), not a motor rating."""

_MJ = mujoco.mjtGeom
_SHAPES = {int(_MJ.mjGEOM_MESH): "mesh", int(_MJ.mjGEOM_BOX): "box", int(_MJ.mjGEOM_SPHERE): "sphere",
           int(_MJ.mjGEOM_CYLINDER): "cylinder"}
"""MuJoCo geom types URDF can describe (the G1 uses no others)."""


@dataclass(frozen=True)
class GeomPart:
    """One visual or collision shape (``role``) of a body, posed in the body's frame (quaternion w, x, y, z).

    For meshes the pose is that of the mesh *file's* frame (MuJoCo recentres compiled meshes; the
    offset is undone here), so the file drawn at ``body pose * (pos_m, quat_wxyz)`` lands where
    MuJoCo draws it. ``size``: the mesh's scale, else MuJoCo's geom size (box half-extents; sphere
    radius; cylinder radius and half-length).
    """

    body: str
    role: str
    shape: str
    pos_m: np.ndarray
    quat_wxyz: np.ndarray
    size: np.ndarray
    rgba: np.ndarray
    material: str
    mesh_file: str = ""


def _pose_in_body(model, g: int) -> tuple[np.ndarray, np.ndarray]:
    pos, quat = model.geom_pos[g].copy(), model.geom_quat[g].copy()
    if model.geom_type[g] != _MJ.mjGEOM_MESH:
        return pos, quat
    # compiled = file frame * mesh offset  =>  file frame = compiled * inverse(mesh offset)
    mesh = model.geom_dataid[g]
    inv, file_quat, shift = np.zeros(4), np.zeros(4), np.zeros(3)
    mujoco.mju_negQuat(inv, model.mesh_quat[mesh])
    mujoco.mju_mulQuat(file_quat, quat, inv)
    mujoco.mju_rotVecQuat(shift, model.mesh_pos[mesh], file_quat)
    return pos - shift, file_quat


def geom_parts(model, mesh_paths: list[str], body_ids: list[int], roles: tuple[str, ...] = ("visual", "collision"),
               ) -> list[GeomPart]:
    """Every visual/collision geom of the given bodies URDF can describe, in model order."""
    groups = {"visual": VISUAL_GROUP, "collision": COLLISION_GROUP}
    wanted = {groups[r]: r for r in roles}
    parts = []
    for g in range(model.ngeom):
        body, group, shape = int(model.geom_bodyid[g]), int(model.geom_group[g]), _SHAPES.get(int(model.geom_type[g]))
        if body not in body_ids or group not in wanted or shape is None:
            continue
        mat = int(model.geom_matid[g])
        rgba = model.mat_rgba[mat] if mat >= 0 else model.geom_rgba[g]
        material = model.material(mat).name if mat >= 0 else ""
        size = model.mesh_scale[model.geom_dataid[g]] if shape == "mesh" else model.geom_size[g]
        pos, quat = _pose_in_body(model, g)
        parts.append(GeomPart(model.body(body).name, wanted[group], shape, pos, quat, size.copy(), rgba.copy(),
                              material or "rgba_" + "_".join(f"{round(c * 255)}" for c in rgba),
                              mesh_paths[model.geom_dataid[g]] if shape == "mesh" else ""))
    return parts


def _num(values, digits: int = 9) -> str:
    return " ".join(f"{float(v) + 0.0:.{digits}g}" for v in np.atleast_1d(values))  # + 0.0: no "-0"


def _origin(parent: ET.Element, pos, quat_wxyz) -> None:
    ET.SubElement(parent, "origin", xyz=_num(pos), rpy=_num(matrix_to_rpy(quat_wxyz_to_matrix(quat_wxyz))))


def _geometry(parent: ET.Element, part: GeomPart) -> None:
    geo = ET.SubElement(parent, "geometry")
    if part.shape == "mesh":
        ET.SubElement(geo, "mesh", filename="file://" + os.path.abspath(part.mesh_file), scale=_num(part.size))
    elif part.shape == "box":
        ET.SubElement(geo, "box", size=_num(2 * part.size))
    elif part.shape == "sphere":
        ET.SubElement(geo, "sphere", radius=_num(part.size[0]))
    else:
        ET.SubElement(geo, "cylinder", radius=_num(part.size[0]), length=_num(2 * part.size[1]))


def urdf_from_model(model, mesh_paths: list[str], name: str = "g1_29dof", root: str = ROOT_BODY) -> str:
    """URDF text of the robot below body ``root`` of a compiled MuJoCo model.

    ``mesh_paths``: source file of each mesh, by mesh id (:func:`exoactor.g1.model.mesh_file_paths`).
    """
    ids = robot_body_ids(model, root)
    robot = ET.Element("robot", name=name)
    parts = geom_parts(model, mesh_paths, ids)
    for mat in dict.fromkeys((p.material, tuple(p.rgba)) for p in parts if p.role == "visual"):
        ET.SubElement(ET.SubElement(robot, "material", name=mat[0]), "color", rgba=_num(mat[1], 4))
    for b in ids:
        link = ET.SubElement(robot, "link", name=model.body(b).name)
        inertial = ET.SubElement(link, "inertial")
        _origin(inertial, model.body_ipos[b], model.body_iquat[b])
        ET.SubElement(inertial, "mass", value=_num(model.body_mass[b]))
        ixx, iyy, izz = model.body_inertia[b]
        ET.SubElement(inertial, "inertia", ixx=_num(ixx), ixy="0", ixz="0", iyy=_num(iyy), iyz="0", izz=_num(izz))
        for part in (p for p in parts if p.body == model.body(b).name):
            el = ET.SubElement(link, part.role)
            _origin(el, part.pos_m, part.quat_wxyz)
            _geometry(el, part)
            if part.role == "visual":
                ET.SubElement(el, "material", name=part.material)
        if b == ids[0]:
            continue
        _add_joint(robot, model, b)
    ET.indent(robot)
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"


def _add_joint(robot: ET.Element, model, b: int) -> None:
    """The joint from body ``b``'s parent to ``b``: its hinge, or fixed for a body without joints."""
    nj, j0 = int(model.body_jntnum[b]), int(model.body_jntadr[b])
    child = model.body(b).name
    if nj > 1 or (nj == 1 and model.jnt_type[j0] != mujoco.mjtJoint.mjJNT_HINGE):
        raise RobotModelError(f"body {child!r}: URDF needs one hinge (or no joint) per body")
    if nj == 1 and np.any(model.jnt_pos[j0] != 0):
        raise RobotModelError(f"joint {model.joint(j0).name!r} is not at its body's origin")
    joint = ET.SubElement(robot, "joint", name=model.joint(j0).name if nj else f"{child}_fixed",
                          type="fixed" if nj == 0 else ("revolute" if model.jnt_limited[j0] else "continuous"))
    _origin(joint, model.body_pos[b], model.body_quat[b])
    ET.SubElement(joint, "parent", link=model.body(model.body_parentid[b]).name)
    ET.SubElement(joint, "child", link=child)
    if nj == 0:
        return
    ET.SubElement(joint, "axis", xyz=_num(model.jnt_axis[j0]))
    limit = {"effort": _num(model.jnt_actfrcrange[j0][1]), "velocity": _num(URDF_VELOCITY_LIMIT_RAD_S)}
    if model.jnt_limited[j0]:
        limit.update(lower=_num(model.jnt_range[j0][0]), upper=_num(model.jnt_range[j0][1]))
    ET.SubElement(joint, "limit", **limit)


def g1_urdf(model_dir: str | os.PathLike | None = None) -> str:
    """URDF of the Menagerie G1 (or the G1 model in ``model_dir``, see :func:`load_g1_spec`)."""
    spec = load_g1_spec(model_dir, with_floor=False)
    model = spec.compile()
    check_joint_layout(model)
    return urdf_from_model(model, mesh_file_paths(spec))


def fixed_joint_transforms(urdf: str) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(parent, child, xyz, quat w, x, y, z) of every fixed joint of a URDF: static TF for links the
    simulator does not move (e.g. a user description's ``head_link``, ``imu_link``)."""
    out = []
    for j in ET.fromstring(urdf).iter("joint"):
        if j.get("type") != "fixed":
            continue
        origin = j.find("origin")
        origin = origin.attrib if origin is not None else {}
        xyz = np.array([float(v) for v in origin.get("xyz", "0 0 0").split()])
        roll, pitch, yaw = (float(v) for v in origin.get("rpy", "0 0 0").split())
        quat = matrix_to_quat_wxyz(rot_z(yaw) @ rot_y(pitch) @ rot_x(roll))
        out.append((j.find("parent").get("link"), j.find("child").get("link"), xyz, quat))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the G1's URDF (from the Menagerie MJCF) to stdout or a file.")
    ap.add_argument("-o", "--output", help="output file (default: stdout)")
    ap.add_argument("--model-dir", help="folder with the G1's g1.xml (default: mujoco-menagerie)")
    args = ap.parse_args(argv)
    text = g1_urdf(args.model_dir)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
