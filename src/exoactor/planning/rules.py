"""Offline planner: decomposes English instructions into vocabulary steps with rules.

Clauses are separated by "then", "and", commas, semicolons and full stops; each clause must
match one verb pattern (synonyms included), else planning fails naming the clause. Numbers may
be digits or words; distances accept m/cm/steps, turns degrees/radians.
"""
from __future__ import annotations

import math
import re

from exoactor.planning.vocabulary import VOCABULARY, PlanningError, Step, TaskPlanner

MAX_STEPS = 12
MAX_INSTRUCTION_CHARS = 500
STEP_LENGTH_M = 0.5
"""Distance of one walking step when an instruction counts steps."""

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9, "ten": 10, "half": 0.5, "a half": 0.5,
                 "a couple of": 2, "couple of": 2, "few": 3, "a few": 3}
_NUM = r"(?P<num>\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")"
_FILLER = re.compile(r"\b(please|robot|can you|could you|would you|i want you to|now|slowly|quickly|"
                     r"carefully|your|the|my|a bit|a little)\b")
_SPLIT = re.compile(r"\s*(?:,|;|\.|!|\bthen\b|\band then\b|\bafter that\b|\bafterwards\b|\band\b|\bfinally\b)\s*")


def _side(text: str, default: str) -> str:
    if re.search(r"\bboth\b|\barms\b|\bhands\b", text):
        return "both"
    if re.search(r"\bleft\b", text):
        return "left"
    if re.search(r"\bright\b", text):
        return "right"
    return default


def _number(text: str) -> float | None:
    m = re.search(_NUM, text)
    if not m:
        return None
    tok = m.group("num")
    return float(tok) if tok[0].isdigit() else float(_NUMBER_WORDS[tok])


def _distance_m(text: str, default: float) -> float:
    m = re.search(_NUM + r"\s*(?P<unit>m\b|meters?|metres?|cm|centimet(?:er|re)s?|steps?|paces?)", text)
    if not m:
        return default
    tok = m.group("num")
    value = float(tok) if tok[0].isdigit() else float(_NUMBER_WORDS[tok])
    unit = m.group("unit")
    if unit.startswith("c"):
        return value / 100.0
    if unit.startswith(("step", "pace")):
        return value * STEP_LENGTH_M
    return value


def _direction(text: str) -> str:
    for word, d in (("backward", "backward"), ("backwards", "backward"), ("back", "backward"),
                    ("left", "left"), ("right", "right"), ("sideways", "left")):
        if re.search(rf"\b{word}\b", text):
            return d
    return "forward"


class RuleBasedPlanner(TaskPlanner):
    """Deterministic, offline planner over :data:`exoactor.planning.VOCABULARY`."""

    name = "rules"

    def plan(self, instruction: str) -> list[Step]:
        if instruction is None or not instruction.strip():
            raise PlanningError("the instruction is empty; say what the robot should do, e.g. 'wave with the right hand'")
        if len(instruction) > MAX_INSTRUCTION_CHARS:
            raise PlanningError(f"the instruction is longer than {MAX_INSTRUCTION_CHARS} characters")
        text = instruction.lower().replace("-", " ").replace("'", "")
        clauses = [c.strip() for c in _SPLIT.split(text) if c and c.strip()]
        if not clauses:
            raise PlanningError(f"no action found in {instruction!r}")
        steps: list[Step] = []
        for i, clause in enumerate(clauses):
            parsed = self._clause(_FILLER.sub(" ", clause))
            if parsed is None:
                raise PlanningError(
                    f"could not understand {clause!r} (part {i + 1} of {instruction!r}); "
                    f"known actions: {', '.join(sorted(VOCABULARY))}")
            steps.extend(parsed)
        if len(steps) > MAX_STEPS:
            raise PlanningError(f"the instruction needs {len(steps)} steps; at most {MAX_STEPS} are allowed")
        return steps

    # One clause -> steps, or None if no pattern matches.
    def _clause(self, c: str) -> list[Step] | None:
        c = re.sub(r"\s+", " ", c).strip()
        if re.fullmatch(r"(wait|pause|stay|hold still|stand still|do nothing|rest)( for .*)?", c):
            secs = _number(c)
            return [self._make("idle", duration_s=min(max(secs or 1.0, 0.5), 10.0))]
        if re.search(r"\b(sit|take a seat)\b", c):
            return [self._make("sit")]
        if re.search(r"\b(stand up|stand|get up|rise)\b", c):
            return [self._make("stand")]
        if re.search(r"\b(squat|crouch)\b", c):
            return [self._make("squat")]
        if re.search(r"\b(bend|bow|lean)\b", c):
            return [self._make("bend")]
        if re.search(r"\bwave\b", c):
            return [self._make("wave", side=_side(c, "right"))]
        if re.search(r"\b(step|steps)\b", c) and not re.search(r"\b(walk|go|move)\b", c):
            d = _distance_m(c, VOCABULARY["step"].default_amount)
            return [self._make("step", amount=d, amount_unit="m", direction=_direction(c))]
        if re.search(r"\b(pick up|pick|grab|grasp|take|lift up)\b", c):
            side = _side(c, "right")
            return [self._make("bend"), self._make("grasp", side=side), self._make("stand")]
        if re.search(r"\b(put|place|set|drop)\b", c):
            return [self._make("place", side=_side(c, "right"))]
        if re.search(r"\b(raise|lift|put up|hands up|arms up)\b", c):
            return [self._make("raise_arm", side=_side(c, "right"))]
        if re.search(r"\b(lower|put down|drop)\b.*\b(arm|arms|hand|hands)\b", c):
            return [self._make("lower_arm", side=_side(c, "right"))]
        if re.search(r"\b(reach|point)\b", c):
            return [self._make("reach", side=_side(c, "right"))]
        if re.search(r"\b(turn|rotate|spin)\b", c):
            deg = None
            m = re.search(_NUM + r"\s*(?P<unit>deg(?:rees?)?|°|rad(?:ians?)?)", c)
            if m:
                tok = m.group("num")
                val = float(tok) if tok[0].isdigit() else float(_NUMBER_WORDS[tok])
                deg = val if not m.group("unit").startswith("rad") else math.degrees(val)
            elif re.search(r"\baround\b", c):
                deg = 180.0
            deg = 90.0 if deg is None else deg
            if deg <= 0 or deg > 360:
                raise PlanningError(f"turn angle {deg:g} deg outside 0..360")
            sign = -1.0 if re.search(r"\bright\b", c) else 1.0
            return [self._make("turn", amount=sign * math.radians(deg), amount_unit="rad",
                               duration_s=max(2.0, 3.0 * deg / 90.0))]
        if re.search(r"\b(walk|go|move|approach|come)\b", c):
            d = _distance_m(c, VOCABULARY["walk"].default_amount)
            if not (0.05 <= d <= 5.0):
                raise PlanningError(f"walking distance {d:g} m outside 0.05..5 m")
            return [self._make("walk", amount=d, amount_unit="m", direction=_direction(c),
                               duration_s=max(2.0, 2.0 + 2.0 * d))]
        return None

    @staticmethod
    def _make(action: str, side: str = "", amount: float | None = None, amount_unit: str | None = None,
              direction: str = "", duration_s: float | None = None) -> Step:
        spec = VOCABULARY[action]
        side = side or spec.default_side if spec.has_side else ""
        amount = spec.default_amount if amount is None else amount
        unit = spec.amount_unit if amount_unit is None else amount_unit
        duration = spec.default_duration_s if duration_s is None else duration_s
        return Step(action=action, side=side, amount=float(amount), amount_unit=unit,
                    direction=direction, duration_s=float(duration),
                    prompt=prompt_for(action, side, amount, unit, direction))


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
