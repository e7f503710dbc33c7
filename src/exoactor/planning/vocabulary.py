"""The atomic-action vocabulary shared by planners, video generators and the README."""
from __future__ import annotations

import abc
from dataclasses import asdict, dataclass


class PlanningError(ValueError):
    """The instruction cannot be turned into steps; the message says why, for the user."""


@dataclass(frozen=True)
class ActionSpec:
    """One verb of the vocabulary: what it means and its defaults."""

    name: str
    description: str
    default_duration_s: float
    has_side: bool = False
    default_side: str = ""
    amount_unit: str = ""
    default_amount: float = 0.0


VOCABULARY: dict[str, ActionSpec] = {s.name: s for s in [
    ActionSpec("walk", "walk some metres forward/backward/sideways", 4.0, amount_unit="m", default_amount=1.0),
    ActionSpec("step", "take one step in a direction", 1.5, amount_unit="m", default_amount=0.3),
    ActionSpec("turn", "turn in place (positive = left)", 3.0, amount_unit="rad", default_amount=1.5708),
    ActionSpec("reach", "reach forward with an arm", 2.0, has_side=True, default_side="right"),
    ActionSpec("raise_arm", "raise an arm overhead", 2.0, has_side=True, default_side="right"),
    ActionSpec("lower_arm", "lower a raised arm", 1.5, has_side=True, default_side="right"),
    ActionSpec("wave", "wave a raised hand", 3.0, has_side=True, default_side="right"),
    ActionSpec("bend", "bend the torso forward", 2.5),
    ActionSpec("squat", "squat down and stand up", 3.0),
    ActionSpec("sit", "sit down (lower the hips as onto a chair)", 3.0),
    ActionSpec("stand", "stand up straight from any pose", 2.0),
    ActionSpec("grasp", "reach down-forward and close the hand on an object", 2.5, has_side=True, default_side="right"),
    ActionSpec("place", "put a held object down in front", 2.5, has_side=True, default_side="right"),
    ActionSpec("idle", "stand still", 1.0),
]}
"""Every atomic action a planner may emit, by name."""


@dataclass(frozen=True)
class Step:
    """One atomic step; see msg/StepPrompt.msg for units and conventions."""

    action: str
    side: str = ""
    amount: float = 0.0
    amount_unit: str = ""
    direction: str = ""
    duration_s: float = 1.0
    prompt: str = ""

    def __post_init__(self) -> None:
        if self.action not in VOCABULARY:
            raise PlanningError(f"unknown action {self.action!r}; known: {', '.join(VOCABULARY)}")
        if self.side not in ("", "left", "right", "both"):
            raise PlanningError(f"side must be left/right/both, got {self.side!r}")
        if not (0.2 <= self.duration_s <= 30.0):
            raise PlanningError(f"step duration {self.duration_s} s outside 0.2..30 s")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Step":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class TaskPlanner(abc.ABC):
    """Interface of a planner backend."""

    name: str = "abstract"

    @abc.abstractmethod
    def plan(self, instruction: str) -> list[Step]:
        """Steps for ``instruction``; raises :class:`PlanningError` with a user-facing reason."""
