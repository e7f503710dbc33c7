"""Locating and loading the Menagerie Unitree G1 model (never copied into this repository).

Resolution order: an explicit path; ``$EXOACTOR_G1_MJCF``; the ``mujoco-menagerie`` package
(which honours ``$MENAGERIE_ROOT`` and otherwise downloads into its cache).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from exoactor.g1.joints import G1_JOINT_NAMES

ROOT_BODY = "pelvis"
"""The G1's floating-base body (URDF root link; TF ``world`` -> ``pelvis``)."""


class RobotModelError(RuntimeError):
    """The G1 model cannot be found or does not match the expected joint layout."""


def load_g1_spec(model_dir: str | os.PathLike | None = None, with_floor: bool = True):
    """An editable ``mujoco.MjSpec`` of the G1 (``scene.xml`` with floor, or bare ``g1.xml``).

    ``model_dir`` or ``$EXOACTOR_G1_DIR`` name a folder with Menagerie's unitree_g1 files;
    otherwise the ``mujoco-menagerie`` package provides them (set ``MENAGERIE_ROOT`` offline).
    """
    import mujoco  # noqa: PLC0415

    entry = "scene" if with_floor else "g1"
    explicit = model_dir or os.environ.get("EXOACTOR_G1_DIR")
    if explicit:
        path = Path(explicit).expanduser() / f"{entry}.xml"
        if not path.is_file():
            raise RobotModelError(f"G1 model file not found: {path}")
        return mujoco.MjSpec.from_file(str(path))
    try:
        import mujoco_menagerie  # noqa: PLC0415
    except ImportError as e:
        raise RobotModelError(
            "cannot find the Unitree G1 model: install the 'mujoco-menagerie' package "
            "(offline: also set MENAGERIE_ROOT to a Menagerie checkout) or set EXOACTOR_G1_DIR") from e
    try:
        return mujoco_menagerie.get("unitree_g1").spec(entry)
    except Exception as e:  # any lookup/download failure is reported the same way
        hint = "" if os.environ.get("MENAGERIE_ROOT") else " (offline? set MENAGERIE_ROOT)"
        raise RobotModelError(f"mujoco-menagerie could not provide unitree_g1{hint}: {e}") from e


def mesh_file_paths(spec) -> list[str]:
    """Source file of each mesh of ``spec`` (the model's own files), indexed by mesh id."""
    return [os.path.join(spec.modelfiledir, spec.meshdir, m.file) for m in spec.meshes]


def robot_body_ids(model, root: str = ROOT_BODY) -> list[int]:
    """Ids of ``root`` and every body below it (parents before children): the robot, without scene objects."""
    try:
        ids = [model.body(root).id]
    except KeyError:
        raise RobotModelError(f"the model has no body {root!r}") from None
    for b in range(ids[0] + 1, model.nbody):  # MuJoCo numbers bodies depth-first: descendants follow their parent
        if model.body_parentid[b] in ids:
            ids.append(b)
    return ids


def load_g1_model(model_dir: str | os.PathLike | None = None, with_floor: bool = True):
    """Compiled ``mujoco.MjModel`` of the G1, checked to be in Unitree motor order."""
    model = load_g1_spec(model_dir, with_floor).compile()
    check_joint_layout(model)
    return model


def check_joint_layout(model) -> None:
    """Raise unless the model's hinge joints are the 29 G1 joints in Unitree motor order."""
    import mujoco  # noqa: PLC0415

    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(model.njnt)
             if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    if tuple(names[:29]) != G1_JOINT_NAMES:
        raise RobotModelError("the G1 model's joints are not in Unitree motor order: " + ", ".join(names[:29]))


def joint_ids(model) -> np.ndarray:
    """(29,) MuJoCo joint ids of the G1 body joints, Unitree motor order: the one name -> id lookup."""
    import mujoco  # noqa: PLC0415

    ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in G1_JOINT_NAMES], dtype=np.int64)
    if np.any(ids < 0):
        raise RobotModelError("the model lacks G1 joints: " + ", ".join(np.array(G1_JOINT_NAMES)[ids < 0]))
    return ids


def joint_qpos_addresses(model) -> np.ndarray:
    """(29,) indices into ``qpos`` of the G1 body joints, Unitree motor order."""
    return np.asarray(model.jnt_qposadr)[joint_ids(model)]


def joint_dof_addresses(model) -> np.ndarray:
    """(29,) indices into ``qvel`` (degrees of freedom) of the G1 body joints, Unitree motor order."""
    return np.asarray(model.jnt_dofadr)[joint_ids(model)]


def joint_ranges_rad(model) -> np.ndarray:
    """(29, 2) joint position ranges of the G1 body joints, Unitree motor order."""
    return np.array(model.jnt_range[joint_ids(model)], dtype=np.float64)


def torque_limits_nm(model) -> np.ndarray:
    """(29,) actuator torque limits (absolute), Unitree motor order."""
    return np.array(model.jnt_actfrcrange[joint_ids(model), 1], dtype=np.float64)


def stand_pose_rad(model) -> np.ndarray:
    """(29,) joint positions of the model's ``stand`` keyframe, Unitree motor order."""
    import mujoco  # noqa: PLC0415

    k = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand")
    if k < 0:
        return np.zeros(29)
    return np.array(model.key_qpos[k][7:7 + 29], dtype=np.float64)
