"""Dex3: closure -> joint targets inside the G1 model's hand joint limits; gains bounded."""
from pathlib import Path

import numpy as np
import pytest

from exoactor.control.dex3 import DEX3_JOINTS, DEX3_LIMITS_RAD, Dex3Hands, dex3_mode

SHARED = Path(__file__).resolve().parents[3] / "shared"
HANDS_XML = SHARED / "assets" / "menagerie" / "unitree_g1" / "g1_with_hands.xml"


def test_limits_are_the_g1_models_hand_joint_ranges():
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(HANDS_XML))
    for side, (lo, hi) in DEX3_LIMITS_RAD.items():
        for k, name in enumerate(DEX3_JOINTS):
            rng = model.joint(f"{side}_hand_{name}_joint").range
            assert (lo[k], hi[k]) == pytest.approx(tuple(rng), abs=1e-5), name


@pytest.mark.parametrize("side", ["left", "right"])
def test_closure_moves_between_open_and_closed_and_never_outside_the_limits(side):
    hands = Dex3Hands()
    lo, hi = DEX3_LIMITS_RAD[side]
    qs = [hands.command(side, c).q_rad for c in np.linspace(-0.5, 1.5, 41)]
    assert all(np.all(q >= lo) and np.all(q <= hi) for q in qs)
    assert np.allclose(hands.command(side, 0.0).q_rad, 0.0)
    closed = hands.command(side, 1.0).q_rad
    assert np.abs(closed[3:]).min() > 1.0  # both fingers bend
    assert np.allclose(hands.command(side, 2.0).q_rad, closed)  # clipped
    assert np.allclose(hands.command(side, float("nan")).q_rad, 0.0)  # NaN: open
    mid = hands.command(side, 0.5).q_rad
    assert np.allclose(mid, 0.5 * closed)


def test_mode_bytes_gains_and_bad_input():
    assert dex3_mode(3) == 0x13 and dex3_mode(6, enabled=False) == 0x06
    cmd = Dex3Hands(kp=2.0, kd=0.2).command("left", 0.3)
    assert cmd.kp == 2.0 and cmd.kd == 0.2 and cmd.mode == tuple(0x10 | i for i in range(7))
    damp = Dex3Hands().damp("right")
    assert damp.kp == 0.0 and damp.kd > 0
    with pytest.raises(ValueError, match="kp <= 5"):
        Dex3Hands(kp=50.0)
    with pytest.raises(ValueError, match="left or right"):
        Dex3Hands().command("middle", 0.5)
