"""The rule planner on natural phrasings, validate_plan and plan_json_schema."""
import json
import math

import pytest

from exoactor.planning import VOCABULARY, PlanningError
from exoactor.planning.rules import MAX_STEPS, RuleBasedPlanner
from exoactor.planning.vocabulary import MAX_PROMPT_CHARS, plan_json_schema, prompt_for, validate_plan


def W(metres, direction="forward"):
    return ("walk", metres, direction)


def S(metres, direction="forward"):
    return ("step", metres, direction)


def T(degrees):
    """A turn, degrees, + = left."""
    return ("turn", degrees)


def IDLE(seconds):
    """Idle for some seconds."""
    return ("idle", seconds)


def PICK(side="right"):
    return [("bend",), ("grasp", side), ("stand",)]


BEND, SQUAT, SIT, STAND = ("bend",), ("squat",), ("sit",), ("stand",)


def summary(step):
    """The comparable part of a step: amount and direction for walk/step/turn, duration for idle, else the side."""
    if step.action in ("walk", "step"):
        return (step.action, round(step.amount, 3), step.direction)
    if step.action == "turn":
        return ("turn", round(math.degrees(step.amount), 1))
    if step.action == "idle":
        return ("idle", round(step.duration_s, 2))
    return (step.action, step.side) if step.side else (step.action,)


PHRASINGS = [
    # walking: distances, units, decimals, directions
    ("walk 1.5 meters forward", [W(1.5)]),
    ("walk forward", [W(1.0)]),
    ("Walk forward 2 metres.", [W(2.0)]),
    ("go forward half a metre", [W(0.5)]),
    ("move 0.5 metres to the left", [W(0.5, "left")]),
    ("walk backwards 1 meter", [W(1.0, "backward")]),
    ("walk back two meters", [W(2.0, "backward")]),
    ("walk three steps forward", [W(1.5)]),
    ("walk 50 cm forward", [W(0.5)]),
    ("move forward 30 centimeters", [W(0.3)]),
    ("walk forward one and a half meters", [W(1.5)]),
    ("walk a meter and a half", [W(1.5)]),
    ("walk 2 and a half meters", [W(2.5)]),
    ("walk 3 feet forward", [W(0.914)]),
    ("walk forward twenty centimeters", [W(0.2)]),
    ("go straight ahead for 2 meters", [W(2.0)]),
    ("move to the right by 1 m", [W(1.0, "right")]),
    ("walk 2.5m", [W(2.5)]),
    ("Walk forward 0.5 metres", [W(0.5)]),
    ("walk forward .5 m", [W(0.5)]),
    ("walk forward 1,5 m", [W(1.5)]),
    ("WALK FORWARD 2 M", [W(2.0)]),
    ("walk fwd 2m", [W(2.0)]),
    ("walk forward a bit", [W(0.5)]),
    ("walk sideways to the left for 1 meter", [W(1.0, "left")]),
    ("march forward 4 meters", [W(4.0)]),
    ("please walk forward 1.2 m", [W(1.2)]),
    ("walk forward 5 meters", [W(5.0)]),
    ("move forward a couple of meters", [W(2.0)]),
    ("move backwards half a meter", [W(0.5, "backward")]),
    ("go left", [W(1.0, "left")]),
    ("go back 3 steps", [W(1.5, "backward")]),
    ("walk two steps", [W(1.0)]),
    ("come here", [W(1.0)]),
    ("come closer", [W(1.0)]),
    ("come over here please", [W(1.0)]),
    ("approach the table", [W(1.0)]),
    ("back up", [W(1.0, "backward")]),
    ("back up a little", [W(0.5, "backward")]),
    ("walk forward and back", [W(1.0), W(1.0, "backward")]),
    ("walk back and forth", [W(1.0), W(1.0, "backward")]),
    ("walk two meters forward, then one meter back", [W(2.0), W(1.0, "backward")]),
    ("walk 2 meters forward and 1 meter to the left", [W(2.0), W(1.0, "left")]),
    # single steps
    ("take a step forward", [S(0.5)]),
    ("step forward", [S(0.5)]),
    ("take two steps back", [S(1.0, "backward")]),
    ("take 2 steps to the right", [S(1.0, "right")]),
    ("step to the left", [S(0.5, "left")]),
    ("step aside", [S(0.5, "left")]),
    ("take a small step to the right", [S(0.25, "right")]),
    ("step back", [S(0.5, "backward")]),
    ("take one step backwards", [S(0.5, "backward")]),
    ("take a few steps forward", [W(1.5)]),
    ("sidestep to the right", [S(0.5, "right")]),
    ("step forward 30 cm", [S(0.3)]),
    ("shuffle to the left", [S(0.5, "left")]),
    ("Can you take a step back please?", [S(0.5, "backward")]),
    ("step left then step right", [S(0.5, "left"), S(0.5, "right")]),
    # turning
    ("turn right by 45.5 degrees", [T(-45.5)]),
    ("turn left", [T(90)]),
    ("turn right", [T(-90)]),
    ("turn around", [T(180)]),
    ("spin around", [T(360)]),
    ("spin", [T(360)]),
    ("about face", [T(180)]),
    ("turn 90 degrees to the right", [T(-90)]),
    ("turn right 90°", [T(-90)]),
    ("rotate 30 degrees clockwise", [T(-30)]),
    ("rotate counterclockwise by 60 degrees", [T(60)]),
    ("turn anticlockwise 45 degrees", [T(45)]),
    ("turn clockwise", [T(-90)]),
    ("rotate to the left by 30 degrees", [T(30)]),
    ("turn to your left", [T(90)]),
    ("make a quarter turn to the right", [T(-90)]),
    ("do a half turn", [T(180)]),
    ("turn a full circle", [T(360)]),
    ("do a full spin", [T(360)]),
    ("spin in a circle", [T(360)]),
    ("turn 180", [T(180)]),
    ("turn left forty-five degrees", [T(45)]),
    ("turn left one hundred and eighty degrees", [T(180)]),
    ("turn 1.57 radians left", [T(90)]),
    ("turn right a little", [T(-45)]),
    ("turn slightly to the left", [T(45)]),
    ("face left", [T(90)]),
    ("face the other way", [T(180)]),
    ("pivot right", [T(-90)]),
    ("do a 180", [T(180)]),
    ("make a u-turn", [T(180)]),
    ("turn around to face me", [T(180)]),
    ("turn right twice", [T(-90), T(-90)]),
    ("spin around twice", [T(360), T(360)]),
    ("turn left then right", [T(90), T(-90)]),
    ("turn left 90 degrees then turn right 90 degrees", [T(90), T(-90)]),
    # arms: raise / lower, pronouns and sides
    ("raise both arms, then lower them", [("raise_arm", "both"), ("lower_arm", "both")]),
    ("raise your left arm and lower it again", [("raise_arm", "left"), ("lower_arm", "left")]),
    ("put your hands up", [("raise_arm", "both")]),
    ("hands up!", [("raise_arm", "both")]),
    ("arms up", [("raise_arm", "both")]),
    ("drop your arms", [("lower_arm", "both")]),
    ("hands down", [("lower_arm", "both")]),
    ("raise your right hand", [("raise_arm", "right")]),
    ("lift your left arm", [("raise_arm", "left")]),
    ("put your left hand up", [("raise_arm", "left")]),
    ("reach for the sky", [("raise_arm", "right")]),
    ("raise your hand", [("raise_arm", "right")]),
    ("lift both arms up over your head", [("raise_arm", "both")]),
    ("lift your arms above your head", [("raise_arm", "both")]),
    ("raise your right arm up high", [("raise_arm", "right")]),
    ("put both hands in the air", [("raise_arm", "both")]),
    ("give me a high five", [("raise_arm", "right")]),
    ("lower your left arm", [("lower_arm", "left")]),
    ("put your arms down", [("lower_arm", "both")]),
    ("put down your arms", [("lower_arm", "both")]),
    ("lower both arms", [("lower_arm", "both")]),
    ("bring your arms down", [("lower_arm", "both")]),
    ("rest your arms", [("lower_arm", "both")]),
    ("let your arms hang by your sides", [("lower_arm", "both")]),
    ("raise your left arm, then the right one", [("raise_arm", "left"), ("raise_arm", "right")]),
    ("raise the left arm, lower it, then raise the other one",
     [("raise_arm", "left"), ("lower_arm", "left"), ("raise_arm", "right")]),
    ("raise and lower your left arm", [("raise_arm", "left"), ("lower_arm", "left")]),
    ("raise your left arm, then lower that one", [("raise_arm", "left"), ("lower_arm", "left")]),
    ("raise your right arm, hold it there for 2 seconds, then lower it",
     [("raise_arm", "right"), IDLE(2.0), ("lower_arm", "right")]),
    ("raise your arm and hold it up for 3 seconds", [("raise_arm", "right"), IDLE(3.0)]),
    ("I'd like you to raise your right arm", [("raise_arm", "right")]),
    # arms: reach / point
    ("reach forward with your right hand", [("reach", "right")]),
    ("reach out with your left arm", [("reach", "left")]),
    ("point at the door", [("reach", "right")]),
    ("hold out your hand", [("reach", "right")]),
    ("stretch your arms out in front of you", [("reach", "both")]),
    ("shake my hand", [("reach", "right")]),
    ("reach for the cup with your left hand", [("reach", "left")]),
    ("extend your right arm", [("reach", "right")]),
    # waving and greeting
    ("say hi", [("wave", "right")]),
    ("say hello", [("wave", "right")]),
    ("wave goodbye", [("wave", "right")]),
    ("greet the audience", [("wave", "right")]),
    ("greet me", [("wave", "right")]),
    ("wave with both hands", [("wave", "both")]),
    ("wave your arms", [("wave", "both")]),
    ("wave your left hand", [("wave", "left")]),
    ("wave hello with your left hand", [("wave", "left")]),
    ("say goodbye with your left hand", [("wave", "left")]),
    ("wave at the camera", [("wave", "right")]),
    ("wave hi to the camera", [("wave", "right")]),
    ("give us a wave", [("wave", "right")]),
    ("Hello there! Can you wave at me?", [("wave", "right")]),
    ("Could you please wave with your left hand?", [("wave", "left")]),
    ("WAVE!", [("wave", "right")]),
    ("raise your left hand and wave", [("raise_arm", "left"), ("wave", "left")]),
    ("raise your left hand, then wave with the same hand", [("raise_arm", "left"), ("wave", "left")]),
    ("put your right hand up and wave it", [("raise_arm", "right"), ("wave", "right")]),
    ("raise your arms and wave them", [("raise_arm", "both"), ("wave", "both")]),
    ("wave with your left hand and then with your right", [("wave", "left"), ("wave", "right")]),
    # bending, bowing, squatting
    ("bow", [BEND]),
    ("take a bow", [BEND]),
    ("bend forward", [BEND]),
    ("bend down", [BEND]),
    ("lean forward", [BEND]),
    ("bow to the audience", [BEND]),
    ("bend over and touch your toes", [BEND]),
    ("squat", [SQUAT]),
    ("crouch", [SQUAT]),
    ("kneel down", [SQUAT]),
    ("kneel", [SQUAT]),
    ("duck", [SQUAT]),
    ("get down low", [SQUAT]),
    ("bend your knees", [SQUAT]),
    ("do a squat", [SQUAT]),
    ("do 3 squats", [SQUAT] * 3),
    ("squat three times", [SQUAT] * 3),
    ("squat twice", [SQUAT] * 2),
    ("Thank you! Now squat.", [SQUAT]),
    # sitting and standing
    ("have a seat", [SIT]),
    ("take a seat", [SIT]),
    ("take a seat on the sofa", [SIT]),
    ("sit down", [SIT]),
    ("please sit on the chair", [SIT]),
    ("sit back down", [SIT]),
    ("Would you kindly sit down", [SIT]),
    ("would you mind sitting down", [SIT]),
    ("go ahead and take a seat", [SIT]),
    ("stand up", [STAND]),
    ("get up", [STAND]),
    ("get back up", [STAND]),
    ("stand up straight", [STAND]),
    ("rise", [STAND]),
    ("straighten up", [STAND]),
    ("Okay, now stand up", [STAND]),
    ("sit down and then stand back up", [SIT, STAND]),
    ("squat down and come back up", [SQUAT, STAND]),
    # grasping and placing
    ("pick it up", PICK()),
    ("grab the cup", PICK()),
    ("take the cup", PICK()),
    ("lift the box", PICK()),
    ("pick the box up", PICK()),
    ("grasp the handle with your left hand", PICK("left")),
    ("bend down and pick up the box", PICK()),
    ("bend down to pick up the box", PICK()),
    ("pick up the cup and put it down", PICK() + [("place", "right")]),
    ("pick up the bottle with your left hand, then set it down", PICK("left") + [("place", "left")]),
    ("pick up the bottle, then put it back", PICK() + [("place", "right")]),
    ("grab the cup, walk forward 2 meters and put it down", PICK() + [W(2.0), ("place", "right")]),
    ("Could you walk over to the table and pick up the cup?", [W(1.0)] + PICK()),
    ("put the cup on the table", [("place", "right")]),
    ("place the bottle down", [("place", "right")]),
    ("drop the ball", [("place", "right")]),
    ("let go of the cup", [("place", "right")]),
    ("release it", [("place", "right")]),
    ("hand me the cup", [("place", "right")]),
    ("give me the bottle", [("place", "right")]),
    # waiting
    ("wait a moment", [IDLE(1.0)]),
    ("wait 2 seconds", [IDLE(2.0)]),
    ("pause for a second", [IDLE(1.0)]),
    ("hold still for 3 s", [IDLE(3.0)]),
    ("wait", [IDLE(1.0)]),
    ("pause", [IDLE(1.0)]),
    ("stay still for five seconds", [IDLE(5.0)]),
    ("freeze", [IDLE(1.0)]),
    ("stand still", [IDLE(1.0)]),
    ("don't move for 2 seconds", [IDLE(2.0)]),
    ("wait for half a second", [IDLE(0.5)]),
    ("wait for 1.5 seconds", [IDLE(1.5)]),
    ("wait 500 ms", [IDLE(0.5)]),
    ("rest for 10 seconds", [IDLE(10.0)]),
    ("pause briefly", [IDLE(1.0)]),
    ("hold that pose for 4 seconds", [IDLE(4.0)]),
    ("wait a bit", [IDLE(2.0)]),
    ("hang on a second", [IDLE(1.0)]),
    ("hold on for two seconds", [IDLE(2.0)]),
    ("take a break for 3 seconds", [IDLE(3.0)]),
    ("do nothing for 3 seconds", [IDLE(3.0)]),
    # repetitions
    ("wave twice", [("wave", "right")] * 2),
    ("wave three times", [("wave", "right")] * 3),
    ("wave your right hand three times", [("wave", "right")] * 3),
    ("wave, then repeat that", [("wave", "right")] * 2),
    ("squat, and repeat that twice", [SQUAT] * 3),
    ("turn left, then do it again", [T(90), T(90)]),
    ("wave with your right hand, then do the same with the other hand", [("wave", "right"), ("wave", "left")]),
    ("bow, then once more", [BEND, BEND]),
    ("squat 2 times then wave", [SQUAT, SQUAT, ("wave", "right")]),
    ("wave with your left hand, then sit down, then wave again", [("wave", "left"), SIT, ("wave", "left")]),
    ("wave, wait 2 seconds, then wave again", [("wave", "right"), IDLE(2.0), ("wave", "right")]),
    # politeness, filler, punctuation
    ("Robot, turn left.", [T(90)]),
    ("please walk forward two meters, thanks", [W(2.0)]),
    ("hey robot, could you come here?", [W(1.0)]),
    ("I want you to walk forward", [W(1.0)]),
    ("Please, if you can, take a step forward.", [S(0.5)]),
    ("walk forward...", [W(1.0)]),
    ("Hey, would you be so kind as to turn around?", [T(180)]),
    # sequencing and connectives
    ("first wave, then sit down", [("wave", "right"), SIT]),
    ("first raise your arms, after that lower them, and finally squat",
     [("raise_arm", "both"), ("lower_arm", "both"), SQUAT]),
    ("wave before sitting down", [("wave", "right"), SIT]),
    ("before you sit, wave", [("wave", "right"), SIT]),
    ("after waving, sit down", [("wave", "right"), SIT]),
    ("sit down after you wave", [("wave", "right"), SIT]),
    ("sit down, but first wave", [("wave", "right"), SIT]),
    ("walk forward; turn left; wave", [W(1.0), T(90), ("wave", "right")]),
    ("turn left, next walk 2 meters, finally wave", [T(90), W(2.0), ("wave", "right")]),
    ("wave, followed by a squat", [("wave", "right"), SQUAT]),
    ("squat and then stand up", [SQUAT, STAND]),
    ("walk forward 1.5 m. Then turn right.", [W(1.5), T(-90)]),
    ("turn left walk forward", [T(90), W(1.0)]),
    ("walk forward, turn right by 90 degrees and then wave with your left hand",
     [W(1.0), T(-90), ("wave", "left")]),
    ("wave, and when you're finished, bow", [("wave", "right"), BEND]),
    ("First, stand up. Second, walk forward. Third, wave.", [STAND, W(1.0), ("wave", "right")]),
    ("walk fwd 2m then turn 90 deg left", [W(2.0), T(90)]),
    ("Walk forward for about two meters, then turn to your right and wave hello.",
     [W(2.0), T(-90), ("wave", "right")]),
    ("Turn left 90 degrees, walk 3 meters, turn right and sit down.", [T(90), W(3.0), T(-90), SIT]),
    ("turn left by ninety degrees and walk forward three metres", [T(90), W(3.0)]),
    ("turn right 45 degrees, walk forward 1 m, then squat", [T(-45), W(1.0), SQUAT]),
    ("raise both arms, wave, and put them down", [("raise_arm", "both"), ("wave", "both"), ("lower_arm", "both")]),
    ("step forward, bow, and step back", [S(0.5), BEND, S(0.5, "backward")]),
    ("turn around and walk 2 meters", [T(180), W(2.0)]),
    ("crouch down, then stand up and wave", [SQUAT, STAND, ("wave", "right")]),
    ("get up and walk forward", [STAND, W(1.0)]),
    # more everyday mixtures
    ("Please raise your left hand above your head", [("raise_arm", "left")]),
    ("okay now put your arms back down", [("lower_arm", "both")]),
    ("Can you raise your right hand and wave to the crowd?", [("raise_arm", "right"), ("wave", "right")]),
    ("raise your hand, wave it, and put it down", [("raise_arm", "right"), ("wave", "right"), ("lower_arm", "right")]),
    ("show me a wave", [("wave", "right")]),
    ("do two waves", [("wave", "right")] * 2),
    ("wave hello, then wave goodbye", [("wave", "right")] * 2),
    ("would you please take a few steps backward", [W(1.5, "backward")]),
    ("go one step forward", [W(0.5)]),
    ("walk a little further", [W(0.5)]),
    ("walk towards me 2 meters", [W(2.0)]),
    ("step forward with your left foot", [S(0.5)]),
    ("Let's start by standing up straight.", [STAND]),
    ("get up from the chair", [STAND]),
    ("end with a bow", [BEND]),
    ("Squat down low and hold it for three seconds", [SQUAT, IDLE(3.0)]),
    ("hold your arms up for 5 seconds", [("raise_arm", "both"), IDLE(5.0)]),
    ("keep your left hand raised", [("raise_arm", "left")]),
    ("rotate by 90°", [T(90)]),
    ("please turn your body 90 degrees to the left", [T(90)]),
    ("spin around once", [T(360)]),
    ("No, turn right instead", [T(-90)]),
    ("turn left, turn left again, and turn left once more", [T(90)] * 3),
    ("wait ten seconds then sit down", [IDLE(10.0), SIT]),
    ("take the bottle from the table", PICK()),
    ("set it on the floor", [("place", "right")]),
    ("grab the apple with your left hand and give it to me", PICK("left") + [("place", "left")]),
    ("go forward, turn around, come back", [W(1.0), T(180), W(1.0)]),
    ("walk forward, turn left, and repeat", [W(1.0), T(90), W(1.0), T(90)]),
    ("do 5 squats and 5 waves", [SQUAT] * 5 + [("wave", "right")] * 5),
]


def _key(text):
    return " ".join(text.lower().split())


def test_the_table_is_large_and_distinct():
    assert len(PHRASINGS) >= 150
    assert len({_key(t) for t, _ in PHRASINGS}) == len(PHRASINGS)


@pytest.fixture(scope="module")
def planner():
    return RuleBasedPlanner()


@pytest.mark.parametrize("text,expected", PHRASINGS, ids=[t for t, _ in PHRASINGS])
def test_phrasing(planner, text, expected):
    steps = planner.plan(text)
    assert [summary(s) for s in steps] == expected
    # every plan is a valid raw plan, and a full one
    assert validate_plan([s.to_dict() for s in steps]) == steps
    for s in steps:
        assert s.prompt.startswith("The person") and s.amount_unit == VOCABULARY[s.action].amount_unit


# --- details the table does not show ------------------------------------------------------------

def test_durations(planner):
    (wave,) = planner.plan("wave for 5 seconds")
    assert wave.duration_s == 5.0
    (fast,), (slow,) = planner.plan("walk forward"), planner.plan("walk forward slowly")
    assert slow.duration_s > fast.duration_s
    (raised,) = planner.plan("raise your left hand for 3 seconds")
    assert (raised.action, raised.side, raised.duration_s) == ("raise_arm", "left", 3.0)
    walk, turn = planner.plan("walk 4 meters and turn all the way around")
    assert walk.duration_s > 4 and turn.duration_s == pytest.approx(12.0) and turn.amount == pytest.approx(2 * math.pi)


def test_turn_sign_and_units(planner):
    (left,), (right,) = planner.plan("turn left 30 degrees"), planner.plan("turn right 30 degrees")
    assert left.amount == pytest.approx(math.radians(30)) and right.amount == pytest.approx(-math.radians(30))
    assert left.amount_unit == "rad" and left.direction == ""


@pytest.mark.parametrize("text,fragment", [
    ("fly to the moon", r"could not understand 'fly to the moon' \(part 1 of 'fly to the moon'\): "
                        r"unknown words 'fly', 'moon'; known actions: bend, grasp"),
    ("wave and fly to the moon", r"could not understand 'fly to the moon' \(part 2 of .*unknown words 'fly', 'moon'"),
    ("blorp the zork", "could not understand 'blorp the zork'.*unknown words 'blorp', 'zork'"),
    ("jump", "unknown word 'jump' .*not in the vocabulary"),
    ("run forward 2 meters", "unknown word 'run'.*walk"),
    ("look left", "unknown word 'look'.*no head motion"),
    ("walk in a circle", "could not understand 'walk in a circle'.*unknown word 'circle'"),
    ("raise your left foot", "unknown word 'foot'.*arms and hands"),
    ("lie down", "unknown word 'lie'"),
    ("do a little dance", "unknown word 'dance'"),
    ("face the door", "unknown word 'door'"),
    ("don't wave", "negative instructions"),
    ("wave while walking", "one action at a time"),
    ("repeat that", "nothing to repeat"),
    ("wait a minute", "duration 60 s outside 0.2..30 s"),
    ("turn 400 degrees", "turn angle 400 degrees outside"),
    ("walk 0.01 meters", "walking distance 0.01 m outside 0.05..5 m"),
    ("wave 20 times", f"at most {MAX_STEPS}"),
    ("squat and wave, then repeat everything 6 times", f"at most {MAX_STEPS}"),
    ("please", "no action found"),
])
def test_clear_errors(planner, text, fragment):
    with pytest.raises(PlanningError, match=fragment):
        planner.plan(text)


# --- validate_plan ------------------------------------------------------------------------------

def _walk(**kw):
    d = {"action": "walk", "side": "", "amount": 1.0, "amount_unit": "m", "direction": "forward",
         "duration_s": 4.0, "prompt": "The person walks."}
    d.update(kw)
    return d


def test_validate_plan_accepts_a_good_plan_and_fills_prompts():
    steps = validate_plan([_walk(prompt=""), {"action": "wave", "side": "left"},
                           {"action": "turn", "amount": -1.0, "amount_unit": "rad", "direction": None},
                           {"action": "idle", "duration_s": 2}])
    assert [s.action for s in steps] == ["walk", "wave", "turn", "idle"]
    assert steps[0].prompt == prompt_for("walk", "", 1.0, "m", "forward")
    assert steps[1].duration_s == VOCABULARY["wave"].default_duration_s and steps[1].prompt
    assert steps[2].amount == -1.0 and steps[3].duration_s == 2.0
    assert validate_plan({"steps": [_walk()]})[0].action == "walk"


@pytest.mark.parametrize("plan,fragment", [
    ([], "empty"),
    ("walk", "must be a list"),
    ([_walk()] * (MAX_STEPS + 1), f"at most {MAX_STEPS}"),
    (["walk"], "step 1: expected an object"),
    ([{"side": "left"}], "step 1: missing 'action'"),
    ([_walk(), {"action": "fly"}], "step 2: unknown action 'fly'; expected one of walk"),
    ([{"action": 3}], "action must be a string"),
    ([_walk(), _walk(amount=12.0)], "step 2: walk amount 12 m outside 0.05..5 m"),
    ([_walk(amount=-1.0)], "amount -1 m outside 0.05..5 m"),
    ([_walk(amount=float("nan"))], "finite"),
    ([_walk(duration_s=float("inf"))], "finite"),
    ([_walk(amount="1.5")], "amount must be a number, got str"),
    ([_walk(amount=True)], "amount must be a number"),
    ([_walk(amount_unit="rad")], "amount_unit must be 'm', got 'rad'"),
    ([_walk(direction="up")], "needs direction forward/backward/left/right, got 'up'"),
    ([_walk(direction="")], "needs direction"),
    ([{"action": "walk", "amount": 1.0}], "needs direction"),
    ([{"action": "walk", "direction": "forward"}], "needs an amount in m"),
    ([_walk(side="left")], "walk takes no side"),
    ([{"action": "wave"}], "wave needs side left/right/both, got none"),
    ([{"action": "wave", "side": "middle"}], "needs side left/right/both, got 'middle'"),
    ([{"action": "squat", "amount": 2.0}], "squat takes no amount"),
    ([{"action": "squat", "amount_unit": "m"}], "squat takes no amount"),
    ([{"action": "squat", "direction": "left"}], "squat takes no direction"),
    ([{"action": "turn", "amount": 7.0, "amount_unit": "rad"}], "turn amount 7 rad outside"),
    ([{"action": "turn", "amount": 0.0, "amount_unit": "rad"}], "turn amount 0 rad outside"),
    ([{"action": "step", "amount": 2.0, "direction": "forward"}], "step amount 2 m outside 0.05..1 m"),
    ([_walk(duration_s=0.1)], "duration_s 0.1 s outside 0.2..30 s"),
    ([_walk(duration_s=45)], "duration_s 45 s outside 0.2..30 s"),
    ([_walk(prompt="x" * (MAX_PROMPT_CHARS + 1))], f"at most {MAX_PROMPT_CHARS}"),
    ([_walk(prompt=5)], "prompt must be a string"),
    ([_walk(duration=3.0)], "unexpected key.*'duration'"),
])
def test_validate_plan_errors(plan, fragment):
    with pytest.raises(PlanningError, match=fragment):
        validate_plan(plan)


def test_rule_limits_come_from_the_vocabulary():
    walk, step, turn = VOCABULARY["walk"], VOCABULARY["step"], VOCABULARY["turn"]
    assert (walk.min_amount, walk.max_amount) == (0.05, 5.0)
    assert turn.max_amount == pytest.approx(2 * math.pi) and turn.signed_amount
    assert step.max_amount <= walk.max_amount
    planner = RuleBasedPlanner()
    with pytest.raises(PlanningError, match="outside"):
        planner.plan(f"walk {walk.max_amount + 0.5:g} meters")
    assert planner.plan(f"walk {walk.max_amount:g} meters")[0].amount == walk.max_amount


# --- plan_json_schema ---------------------------------------------------------------------------

ALLOWED_SCHEMA_KEYS = {"type", "properties", "required", "enum", "items", "minItems", "maxItems", "minimum",
                       "maximum", "description"}


def _schema_keys(node):
    if isinstance(node, dict):
        keys = set(node) - {"properties"} if "properties" in node else set(node)
        if "properties" in node:
            keys.add("properties")
            for sub in node["properties"].values():
                keys |= _schema_keys(sub)
        if "items" in node:
            keys |= _schema_keys(node["items"])
        return keys
    return set()


def test_plan_json_schema():
    schema = plan_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert _schema_keys(schema) <= ALLOWED_SCHEMA_KEYS
    steps = schema["properties"]["steps"]
    assert steps["type"] == "array" and steps["minItems"] == 1 and steps["maxItems"] == MAX_STEPS
    item = steps["items"]
    assert item["properties"]["action"]["enum"] == list(VOCABULARY)
    assert item["properties"]["side"]["enum"] == ["", "left", "right", "both"]
    assert item["properties"]["amount_unit"]["enum"] == ["", "m", "rad"]
    assert item["properties"]["direction"]["enum"] == ["", "forward", "backward", "left", "right"]
    dur = item["properties"]["duration_s"]
    assert (dur["type"], dur["minimum"], dur["maximum"]) == ("number", 0.2, 30.0)
    assert set(item["required"]) == set(item["properties"])
    amount = item["properties"]["amount"]["description"]
    assert "radians" in amount and "positive = turn left" in amount and "metres" in amount


def test_a_plan_shaped_like_the_schema_validates():
    steps = RuleBasedPlanner().plan("walk 1.5 meters forward, turn right by 45.5 degrees and wave")
    answer = {"steps": [s.to_dict() for s in steps]}
    props = plan_json_schema()["properties"]["steps"]["items"]["properties"]
    for d in answer["steps"]:
        assert set(d) == set(props)
        for key in ("action", "side", "amount_unit", "direction"):
            assert d[key] in props[key]["enum"]
    assert validate_plan(answer) == steps
