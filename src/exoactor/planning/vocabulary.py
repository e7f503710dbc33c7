"""The atomic-action vocabulary shared by planners, video generators and the README.

Besides the verbs (:data:`VOCABULARY`) this module owns the limits every planner must respect
(amount ranges per verb, step durations, :data:`MAX_STEPS`, prompt length), :func:`validate_plan`
that checks a raw plan as an LLM returns it against them, and :func:`plan_json_schema`, the JSON
Schema such a planner can hand to the model as its response format.
"""
from __future__ import annotations

import abc
import math
from dataclasses import asdict, dataclass


class PlanningError(ValueError):
    """The instruction cannot be turned into steps; the message says why, for the user."""


MAX_STEPS = 12
"""Most steps one instruction may expand to."""
MIN_DURATION_S = 0.2
MAX_DURATION_S = 30.0
"""Range of a step's nominal duration, seconds."""
MAX_PROMPT_CHARS = 2500
"""Longest video prompt of one step."""
SIDES = ("left", "right", "both")
"""Sides of a verb with ``has_side``; verbs without a side use ""."""
DIRECTIONS = ("forward", "backward", "left", "right")
"""Directions of a verb with ``has_direction`` (walk, step); other verbs use ""."""
UNITS = ("m", "rad")
"""Units of an amount; verbs without an amount use ""."""


@dataclass(frozen=True)
class ActionSpec:
    """One verb of the vocabulary: what it means, its defaults and limits.

    An amount, where the verb has one (``amount_unit`` not ""), must lie in ``min_amount..max_amount``;
    with ``signed_amount`` that range bounds its magnitude and the sign carries meaning (turn: + = left),
    otherwise the amount is positive and ``direction`` says where (walk, step).
    """

    name: str
    description: str
    default_duration_s: float
    has_side: bool = False
    default_side: str = ""
    amount_unit: str = ""
    default_amount: float = 0.0
    min_amount: float = 0.0
    max_amount: float = 0.0
    signed_amount: bool = False
    has_direction: bool = False

    def amount_in_limits(self, amount: float) -> bool:
        """Whether ``amount`` (in ``amount_unit``) is allowed for this verb."""
        value = abs(amount) if self.signed_amount else amount
        return self.min_amount <= value <= self.max_amount

    def limits_text(self) -> str:
        """The allowed amounts in words, e.g. "0.05..5 m"."""
        magnitude = "|amount| " if self.signed_amount else ""
        return f"{magnitude}{self.min_amount:.4g}..{self.max_amount:.4g} {self.amount_unit}"


VOCABULARY: dict[str, ActionSpec] = {s.name: s for s in [
    ActionSpec("walk", "walk some metres forward/backward/sideways", 4.0, amount_unit="m", default_amount=1.0,
               min_amount=0.05, max_amount=5.0, has_direction=True),
    ActionSpec("step", "take one step in a direction", 1.5, amount_unit="m", default_amount=0.5,
               min_amount=0.05, max_amount=1.0, has_direction=True),
    ActionSpec("turn", "turn in place (positive = left)", 3.0, amount_unit="rad", default_amount=math.pi / 2,
               min_amount=math.radians(1.0), max_amount=2 * math.pi, signed_amount=True),
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
        if self.side not in ("", *SIDES):
            raise PlanningError(f"side must be left/right/both, got {self.side!r}")
        if not (MIN_DURATION_S <= self.duration_s <= MAX_DURATION_S):
            raise PlanningError(f"step duration {self.duration_s} s outside {MIN_DURATION_S:g}..{MAX_DURATION_S:g} s")

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


def prompt_for(action: str, side: str, amount: float, unit: str, direction: str) -> str:
    """An image-to-video prompt for one step (static camera, full body, same scene)."""
    arm = {"left": "left arm", "right": "right arm", "both": "both arms"}.get(side, "arm")
    hand = {"left": "left hand", "right": "right hand", "both": "both hands"}.get(side, "hand")
    what = {
        "walk": f"walks {abs(amount):.1f} metres {direction}",
        "step": f"takes one step {direction}",
        "turn": f"turns in place {abs(math.degrees(amount)):.0f} degrees to the {'left' if amount > 0 else 'right'}",
        "reach": f"reaches forward with the {arm}",
        "raise_arm": f"raises the {arm} overhead",
        "lower_arm": f"lowers the {arm} to the side",
        "wave": f"waves the raised {hand}",
        "bend": "bends the upper body forward at the hips",
        "squat": "squats down and stands back up",
        "sit": "sits down as if onto a chair",
        "stand": "stands up straight",
        "grasp": f"reaches down and grasps the object in front with the {hand}",
        "place": f"puts the object held in the {hand} down in front",
        "idle": "stands still",
    }[action]
    return (f"The person {what}. Static camera, the whole body stays in view, "
            f"same scene and lighting, realistic motion.")


# --- checking a raw plan ------------------------------------------------------------------------

PLAN_KEYS = ("action", "side", "amount", "amount_unit", "direction", "duration_s", "prompt")
"""Keys of one step of a raw plan (see :func:`validate_plan`)."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate_step(n: int, item: object) -> Step:
    where = f"step {n}"
    if not isinstance(item, dict):
        raise PlanningError(f"{where}: expected an object with keys {', '.join(PLAN_KEYS)}, got {type(item).__name__}")
    extra = [k for k in item if k not in PLAN_KEYS]
    if extra:
        raise PlanningError(f"{where}: unexpected key(s) {', '.join(map(repr, extra))}; "
                            f"expected only {', '.join(PLAN_KEYS)}")
    get = {k: v for k, v in item.items() if v is not None}.get
    action = get("action")
    if action is None:
        raise PlanningError(f"{where}: missing 'action'; expected one of {', '.join(VOCABULARY)}")
    if not isinstance(action, str):
        raise PlanningError(f"{where}: action must be a string, got {type(action).__name__}")
    spec = VOCABULARY.get(action)
    if spec is None:
        raise PlanningError(f"{where}: unknown action {action!r}; expected one of {', '.join(VOCABULARY)}")
    where = f"step {n}: {action}"
    for key in ("side", "amount_unit", "direction", "prompt"):
        if get(key) is not None and not isinstance(get(key), str):
            raise PlanningError(f"{where} {key} must be a string, got {type(get(key)).__name__}")
    for key in ("amount", "duration_s"):
        value = get(key)
        if value is not None and not _is_number(value):
            raise PlanningError(f"{where} {key} must be a number, got {type(value).__name__} {value!r}")
        if value is not None and not math.isfinite(value):
            raise PlanningError(f"{where} {key} must be a finite number, got {value!r}")

    side = get("side", "")
    if spec.has_side and side not in SIDES:
        got = repr(side) if side else "none"
        raise PlanningError(f"{where} needs side {'/'.join(SIDES)}, got {got}")
    if not spec.has_side and side:
        raise PlanningError(f"{where} takes no side (expected \"\"), got {side!r}")

    unit = get("amount_unit")
    amount = get("amount")
    if spec.amount_unit:
        if unit not in (None, spec.amount_unit):
            raise PlanningError(f"{where} amount_unit must be {spec.amount_unit!r}, got {unit!r}")
        if amount is None:
            raise PlanningError(f"{where} needs an amount in {spec.amount_unit} ({spec.limits_text()})")
        if not spec.amount_in_limits(amount):
            raise PlanningError(f"{where} amount {amount:g} {spec.amount_unit} outside {spec.limits_text()}")
    else:
        if unit:
            raise PlanningError(f"{where} takes no amount (expected amount_unit \"\"), got {unit!r}")
        if amount:
            raise PlanningError(f"{where} takes no amount (expected 0), got {amount:g}")
    amount = float(amount or 0.0)

    direction = get("direction", "")
    if spec.has_direction and direction not in DIRECTIONS:
        got = repr(direction) if direction else "none"
        raise PlanningError(f"{where} needs direction {'/'.join(DIRECTIONS)}, got {got}")
    if not spec.has_direction and direction:
        raise PlanningError(f"{where} takes no direction (expected \"\"), got {direction!r}")

    duration = get("duration_s", spec.default_duration_s)
    if not (MIN_DURATION_S <= duration <= MAX_DURATION_S):
        raise PlanningError(f"{where} duration_s {duration:g} s outside {MIN_DURATION_S:g}..{MAX_DURATION_S:g} s")

    prompt = get("prompt") or prompt_for(action, side, amount, spec.amount_unit, direction)
    if len(prompt) > MAX_PROMPT_CHARS:
        raise PlanningError(f"{where} prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS} are allowed")
    return Step(action=action, side=side, amount=amount, amount_unit=spec.amount_unit, direction=direction,
                duration_s=float(duration), prompt=prompt)


def validate_plan(items: list[dict]) -> list[Step]:
    """Check a raw plan (as an LLM returns it) against the vocabulary and its limits; the steps.

    ``items`` is a list of dicts with the keys of :data:`PLAN_KEYS` (a ``{"steps": [...]}`` object is
    accepted too). ``action`` is required; so are ``side`` for verbs with a side, ``amount`` for verbs
    with an amount and ``direction`` for walk/step. ``amount_unit``, ``duration_s`` and ``prompt`` may be
    omitted (null counts as omitted): the unit and duration then come from the verb, the prompt from
    :func:`prompt_for`. Raises :class:`PlanningError` naming the step, what was expected and what came.
    """
    if isinstance(items, dict) and "steps" in items:
        items = items["steps"]
    if not isinstance(items, (list, tuple)):
        raise PlanningError(f"a plan must be a list of steps, got {type(items).__name__}")
    if not items:
        raise PlanningError(f"the plan is empty; expected 1..{MAX_STEPS} steps")
    if len(items) > MAX_STEPS:
        raise PlanningError(f"the plan has {len(items)} steps; at most {MAX_STEPS} are allowed")
    return [_validate_step(i + 1, item) for i, item in enumerate(items)]


def plan_json_schema() -> dict:
    """JSON Schema of a plan, ``{"steps": [step, ...]}``, for an LLM's structured output.

    Uses only the subset that Gemini's ``responseJsonSchema`` and OpenAI's ``response_format:
    json_schema`` accept (type, properties, required, enum, items, minItems/maxItems, minimum/maximum,
    description). Every key is required (OpenAI strict mode): unused ones are "" or 0. Check the
    answer with :func:`validate_plan`, which applies the per-verb limits the schema cannot express.
    """
    actions = list(VOCABULARY)
    verbs = "; ".join(f"{s.name}: {s.description}" for s in VOCABULARY.values())
    sided = ", ".join(s.name for s in VOCABULARY.values() if s.has_side)
    amounts = "; ".join(f"{s.name}: {s.limits_text()}" for s in VOCABULARY.values() if s.amount_unit)
    step = {
        "type": "object",
        "description": "One atomic action of the robot.",
        "properties": {
            "action": {"type": "string", "enum": actions, "description": f"The atomic action. {verbs}."},
            "side": {"type": "string", "enum": ["", *SIDES],
                     "description": f"Which arm/hand: left, right or both for {sided}; \"\" for every other action."},
            "amount": {"type": "number",
                       "description": ("Magnitude of the action in amount_unit. walk/step: distance in metres, "
                                       "always positive, the way given by direction. turn: angle in radians, "
                                       "positive = turn left (counter-clockwise seen from above), negative = "
                                       f"turn right; e.g. 1.5708 = 90 degrees left. Limits: {amounts}. "
                                       "0 for every other action.")},
            "amount_unit": {"type": "string", "enum": ["", *UNITS],
                            "description": "\"m\" for walk and step, \"rad\" for turn, \"\" for every other action."},
            "direction": {"type": "string", "enum": ["", *DIRECTIONS],
                          "description": ("walk/step: which way, relative to where the robot faces (forward, "
                                          "backward, left = sideways to its left, right); \"\" for every other "
                                          "action.")},
            "duration_s": {"type": "number", "minimum": MIN_DURATION_S, "maximum": MAX_DURATION_S,
                           "description": ("Nominal duration of the action in seconds (e.g. walk about 2 s + 2 s "
                                           "per metre, turn 3 s per 90 degrees, wave 3 s; idle: how long to wait).")},
            "prompt": {"type": "string",
                       "description": ("Optional image-to-video prompt describing the person doing this one "
                                       f"action (at most {MAX_PROMPT_CHARS} characters); \"\" to use a default.")},
        },
        "required": list(PLAN_KEYS),
    }
    return {
        "type": "object",
        "description": "A plan: the instruction decomposed into atomic actions done one after another.",
        "properties": {
            "steps": {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": step,
                      "description": f"The actions in the order they are performed, 1..{MAX_STEPS} of them."},
        },
        "required": ["steps"],
    }


def default_step(action: str) -> Step:
    """A step of ``action`` at the vocabulary's defaults (side, amount, duration; forward for moves in
    metres), as the benchmarks and test clips render it. KeyError for an action not in VOCABULARY."""
    spec = VOCABULARY[action]
    return Step(action=action, side=spec.default_side, amount=spec.default_amount, amount_unit=spec.amount_unit,
                direction="forward" if spec.amount_unit == "m" else "", duration_s=spec.default_duration_s)
