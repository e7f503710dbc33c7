import math

import pytest

from exoactor.planning import PlanningError, VOCABULARY
from exoactor.planning.rules import RuleBasedPlanner


@pytest.fixture
def plan():
    return RuleBasedPlanner().plan


@pytest.mark.parametrize("text,expected", [
    ("wave with the right hand, then squat", [("wave", "right"), ("squat", "")]),
    ("Sit on the chair", [("sit", "")]),
    ("pick up the bottle", [("bend", ""), ("grasp", "right"), ("stand", "")]),
    ("raise both arms then lower your arms", [("raise_arm", "both"), ("lower_arm", "both")]),
    ("please wave with your left hand", [("wave", "left")]),
    ("reach forward with the left arm and stand up", [("reach", "left"), ("stand", "")]),
])
def test_decomposition(plan, text, expected):
    assert [(s.action, s.side) for s in plan(text)] == expected


def test_amounts_and_units(plan):
    walk, turn = plan("walk 2 meters forward and turn right 45 degrees")
    assert (walk.action, walk.amount, walk.direction, walk.amount_unit) == ("walk", 2.0, "forward", "m")
    assert turn.action == "turn" and math.isclose(turn.amount, -math.pi / 4) and turn.amount_unit == "rad"
    (steps,) = plan("take two steps back")
    assert steps.action == "step" and steps.direction == "backward" and steps.amount == 1.0


def test_every_step_has_a_prompt_and_valid_duration(plan):
    for s in plan("walk forward, turn left, wave, squat, sit, stand up, bend, place the cup"):
        assert s.action in VOCABULARY and s.prompt.startswith("The person") and 0.2 <= s.duration_s <= 30


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"), ("   ", "empty"), ("blorp the zork", "could not understand 'blorp the zork'"),
    ("wave and fly to the moon", "could not understand 'fly to the moon'"),
    ("walk 40 meters", "outside"), ("x" * 600, "longer than"),
])
def test_clear_errors(plan, text, fragment):
    with pytest.raises(PlanningError, match=fragment):
        plan(text)
