"""Offline planner: decomposes English instructions into vocabulary steps with rules.

What the grammar understands
----------------------------
* **Text**: any case and punctuation; numbers as digits or words ("1.5", ".5", "forty-five", "a hundred
  and eighty", "one and a half", "half a metre", "a metre and a half", "a couple of", "a few" = 3),
  digits glued to units ("1.5m", "90°", "2s"), contractions, numbered lists ("1) ... 2) ...").
* **Politeness and filler** is dropped: "please", "could you", "would you kindly", "I'd like you to",
  "robot,", "go ahead and", "try to", "thanks", "thank you", "ok", "now", "just", ...
* **Sequencing**: clauses are split on ``, ; . ! ? :``, "and", "then", "next", "first", "after that",
  "afterwards", "finally", "lastly", "followed by", "when you're done" -- never inside a number.
  "X before Y" and "before Y, X" mean X then Y; "after X, Y" and "Y after X" mean X then Y;
  "Y, but first X" means X then Y. "bend down to pick it up" is "bend down, then pick it up", and a
  missing comma between two verbs ("turn left walk forward") splits there too.
* **Verbs** come from synonym tables (:data:`_VERBS`) plus idioms rewritten to them (:data:`_IDIOMS`),
  in any inflection ("waving", "squats"): walk/go/move/come/approach/"back up"/"come here"/"come
  closer"; step/"take a step"/"step aside"/sidestep; turn/rotate/pivot/face/spin/"about face"/"turn
  around"; reach/point/extend/"hold out your hand"/"shake hands"; raise/lift/"hands up"/"put your hands
  up"/"reach for the sky"; lower/"drop your arms"/"hands down"/"arms by your sides"; wave/greet/"say
  hi"/"say hello"/"wave goodbye"; bend/bow/lean/"take a bow"/"touch your toes"; squat/crouch/kneel/duck/
  "get down"/"bend your knees"; sit/"have a seat"/"take a seat"; stand/"get up"/rise/straighten;
  pick up/grab/grasp/take/get/fetch (bend, grasp, stand); put/place/set/drop/release/"let go"/"hand me"
  (place); wait/pause/rest/freeze/"hold still"/"stand still"/"do nothing"/"don't move"/stop (idle);
  do/make/perform/give + a verb noun ("do 3 squats", "give a wave", "make a left turn", "do a 180").
* **Objects**: "put down" / "drop" / "lower" mean ``lower_arm`` when their object is an arm or hand
  ("drop your arms") and ``place`` when it is a thing ("drop the ball"); with a pronoun ("put it down")
  the previous clause decides. Free object words are accepted after grasp/place verbs ("grab the red
  cup") and after target prepositions ("walk to the door", "wave at the crowd", "sit on the chair").
* **Sides**: left/right/both, "left and right hands", plural "arms"/"hands" = both; pronouns ("it",
  "them", "that one", "the same arm") and "again" reuse the previous limb's side, "the other one/arm/
  hand" the opposite. Without a side, an arm gesture keeps the side of the previous arm gesture
  ("raise your left arm and wave" waves left) and ``place`` the side that grasped; else the default.
* **Amounts**: distances in m/cm/mm/ft/inches/yards or steps/paces (one step = :data:`STEP_LENGTH_M`);
  "a little"/"a bit" = 0.5 m walk, 0.25 m step, 45 degree turn. Walk direction forward (default)/
  backward/back/left/right; "sideways"/"aside"/"to the side" mean left. A step longer than the step
  verb allows becomes a walk ("take three steps" = walk 1.5 m). Turns in degrees/radians/turns,
  "quarter turn", "half turn", "full circle", "around"/"back" = 180 degrees (spin: 360); left/anti-
  clockwise = positive, right/clockwise = negative, default left. A bare number is metres for walk,
  degrees for turn, steps for step, seconds for wait, a count otherwise ("do 3 squats").
* **Repetition**: "twice", "3 times", "do 3 squats", "wave again" (same side), "twice more";
  "repeat that" / "do it again" / "once more" / "again" repeat the previous clause, a bare "repeat" or
  "repeat everything" all steps so far, "repeat that twice" twice more (N more times, not N in all);
  "do the same with the other hand" repeats the previous clause with the side mirrored.
* **Durations**: "wait a moment" (1 s), "wait 2 seconds", "pause for a second", "hold still for 3 s",
  "a bit" (2 s), "a while" (5 s); "wave for 5 seconds" sets that step's duration; "slowly"/"quickly"
  stretch or shorten it. All durations must lie in 0.2..30 s.
* **Ellipsis**: a clause without a verb repeats the previous verb with new details ("turn left, then
  right", "walk 2 m forward and 1 m back", "raise the left arm, then the right one", "pick up the cup
  and the plate"); "raise and lower your left arm" shares the side.

What it does not do (clear :class:`PlanningError` instead): actions outside the vocabulary (jump, run,
dance, lie down, kick, clap, lean back, bend sideways, moving a leg or the head ...), "look left/right"
(decided: rejected, as there is no head motion and turning the whole body would change the heading of
every later walk; say "turn left"), negations ("don't wave"), simultaneous actions ("wave while
walking"), conditions ("walk until you reach the table"), navigation ("walk around the table"; a
target such as "walk to the door" is accepted but walks the default 1 m, as the planner cannot see),
more than :data:`MAX_STEPS` steps, and amounts or durations outside the vocabulary's limits. An
unplannable clause is quoted with the words that were not understood.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from exoactor.planning.vocabulary import (MAX_DURATION_S, MAX_STEPS, MIN_DURATION_S, VOCABULARY, PlanningError, Step,
                                          TaskPlanner, prompt_for, validate_plan)

__all__ = ["MAX_INSTRUCTION_CHARS", "MAX_STEPS", "STEP_LENGTH_M", "RuleBasedPlanner", "prompt_for"]

MAX_INSTRUCTION_CHARS = 500
STEP_LENGTH_M = VOCABULARY["step"].default_amount
"""Distance of one walking step when an instruction counts steps."""

# ------------------------------------------------------------------------------------------------
# 1. Normalising the text: case, punctuation, contractions, numbers spelt out.

_CONTRACTIONS = {
    "i'd": "i would", "you'd": "you would", "i'm": "i am", "you're": "you are", "let's": "let us",
    "don't": "do not", "dont": "do not", "doesn't": "does not", "can't": "cannot", "won't": "will not",
    "it's": "it is", "that's": "that is", "you've": "you have", "i've": "i have", "you'll": "you will",
    "i'll": "i will", "what's": "what is", "youre": "you are", "youve": "you have",
}
_SMALL_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_ONE_IS_A_NOUN_AFTER = {"the", "that", "this", "other", "left", "right", "same", "each", "another", "which", "every",
                        "no", "any", "red", "blue", "green", "big", "small"}
"""After these, "one" is a pronoun ("the left one"), not a number."""

_DIST_UNITS = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0, "cm": 0.01, "centimeter": 0.01,
               "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01, "mm": 0.001, "millimeter": 0.001,
               "millimeters": 0.001, "millimetre": 0.001, "millimetres": 0.001, "ft": 0.3048, "foot": 0.3048,
               "feet": 0.3048, "inch": 0.0254, "inches": 0.0254, "yard": 0.9144, "yards": 0.9144, "yd": 0.9144,
               "yds": 0.9144, "km": 1000.0, "kilometer": 1000.0, "kilometers": 1000.0, "kilometre": 1000.0,
               "kilometres": 1000.0}
_STEP_UNITS = ("steps", "step", "paces", "pace", "strides", "stride")
_ANGLE_UNITS = {"degrees": 1.0, "degree": 1.0, "deg": 1.0, "degs": 1.0, "radians": 180 / math.pi,
                "radian": 180 / math.pi, "rad": 180 / math.pi, "rads": 180 / math.pi, "turns": 360.0, "turn": 360.0,
                "rotations": 360.0, "rotation": 360.0, "revolutions": 360.0, "revolution": 360.0, "circles": 360.0,
                "circle": 360.0, "spins": 360.0, "spin": 360.0}
_TIME_UNITS = {"seconds": 1.0, "second": 1.0, "secs": 1.0, "sec": 1.0, "s": 1.0, "minutes": 60.0, "minute": 60.0,
               "mins": 60.0, "min": 60.0, "milliseconds": 0.001, "millisecond": 0.001, "ms": 0.001}
_NUM = r"(\d+(?:\.\d+)?|\.\d+)"
_ALL_UNITS = {*_DIST_UNITS, *_STEP_UNITS, *_ANGLE_UNITS, *_TIME_UNITS}


def _alts(words) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


def _fmt(value: float) -> str:
    return f"{value:g}"


def _read_number(words: list[str], i: int) -> tuple[int, int] | None:
    """(value, index after it) of a number spelt out in ``words`` from ``i``, else None."""
    n, k, value = len(words), i, 0
    if (words[k] in _SMALL_NUMBERS or words[k] in ("a", "an")) and k + 1 < n and words[k + 1] == "hundred":
        value, k = 100 * _SMALL_NUMBERS.get(words[k], 1), k + 2
        if k + 1 < n and words[k] == "and" and (words[k + 1] in _SMALL_NUMBERS or words[k + 1] in _TENS):
            k += 1
    if k < n and words[k] in _TENS:
        value, k = value + _TENS[words[k]], k + 1
        if k < n and 0 < _SMALL_NUMBERS.get(words[k], 0) < 10:
            value, k = value + _SMALL_NUMBERS[words[k]], k + 1
    elif k < n and words[k] in _SMALL_NUMBERS:
        value, k = value + _SMALL_NUMBERS[words[k]], k + 1
    return (value, k) if k > i else None


def _spell_numbers(text: str) -> str:
    words, out, i = text.split(), [], 0
    while i < len(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        counted = after in _TENS or after in _ALL_UNITS or after in ("hundred", "and", "more", "time", "times")
        if words[i] == "one" and out and out[-1] in _ONE_IS_A_NOUN_AFTER and not counted:
            out.append("one")
            i += 1
            continue
        got = _read_number(words, i)
        if got is None:
            out.append(words[i])
            i += 1
        else:
            out.append(str(got[0]))
            i = got[1]
    return " ".join(out)


_UNIT_WORD = _alts([*_DIST_UNITS, *_STEP_UNITS, *_ANGLE_UNITS, *_TIME_UNITS])
_FRACTIONS: list[tuple[str, object]] = [
    (r"\b(\d+(?:\.\d+)?) and (?:an? )?half\b", lambda m: _fmt(float(m[1]) + 0.5)),
    (rf"\b(an?|\d+(?:\.\d+)?) ({_UNIT_WORD}) and an? half\b",
     lambda m: f"{_fmt((1.0 if m[1][0] == 'a' else float(m[1])) + 0.5)} {m[2]}"),
    (r"\b(\d+) quarters?(?: of)?(?: an?)?\b", lambda m: _fmt(0.25 * int(m[1]))),
    (r"\b(an? )?quarter(?: of)?(?: an?)?\b", lambda m: f"{m[1] or ''}0.25"),
    (r"\bhalf ?way (?:a)?round\b", "0.5 turn"),
    (r"\ball the way (?:a)?round\b", "1 turn"),
    (r"\b(an? )?(?:full|complete|whole|entire) (?:turn|circle|rotation|revolution|spin|360)\b",
     lambda m: f"{m[1] or ''}1 turn"),
    (r"\bhalf(?: of)? an?\b", "0.5"),
    (r"\b(an?) half\b", r"\1 0.5"),
    (r"\bhalf\b", "0.5"),
    (r"\b(?:a )?couple(?: of)?\b", "2"),
    (r"\ba pair of\b", "2"),
    (r"\b(?:a few|several)\b", "3"),
    (r"\b(\d+)/(\d+)\b", lambda m: _fmt(int(m[1]) / int(m[2])) if int(m[2]) else m[0]),
]


def _normalise(text: str) -> str:
    text = text.lower()
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("`", "'"), ("\u201c", '"'), ("\u201d", '"'),
                 ("\u00b0", " degrees "), ("\u2013", "-"), ("\u2014", ","), ("&", " and "), ("->", " then "),
                 ("\u2192", " then ")):
        text = text.replace(a, b)
    text = re.sub(r"(^|\n)\s*\(?\d+[.)]\s+", r"\1. ", text)            # numbered list "1. walk" / "2) turn"
    text = re.sub(r"(^|\s)\(?\d+\)\s", " . ", text)
    text = re.sub(r"(\d),(\d)", r"\1.\2", text)                          # "1,5 m"
    text = re.sub(r"(?<!\d)\.(\d)", r"0.\1", text)                        # ".5 m"
    text = re.sub(r"(?<![a-z])'em\b", "them", text)
    text = re.sub(r"\b(" + _alts(_CONTRACTIONS) + r")(?![a-z'])", lambda m: _CONTRACTIONS[m[1]], text)
    text = text.replace("'", "").replace('"', " ")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text).replace("-", " ")
    text = re.sub(r"(\d)([a-z])", r"\1 \2", text)                        # "1.5m", "2s", "3x"
    text = re.sub(r"\bfwd\b", "forward", re.sub(r"\b(?:bwd|bkwd)\b", "backward", text))
    text = re.sub(r"\b(one|a) eighty\b", "180", text)
    text = re.sub(r"\bthree sixty\b", "360", text)
    text = re.sub(r"([,;:!?()\[\]\n])|\.(?!\d)", lambda m: f" {m[1] or '.'} ", text)   # "1.5", ".5" stay
    text = _spell_numbers(text)
    for pattern, repl in _FRACTIONS:
        text = re.sub(pattern, repl, text)
    text = re.sub(r"\b(\d+) x\b|\bx (\d+)\b", lambda m: f"{m[1] or m[2]} times", text)
    text = re.sub(r"\b(?:both )?(?:left and right|right and left)(?= (?:arms?|hands?)\b)", "both", text)
    text = re.sub(r"\b(?:go ahead|go on|try|be sure|come on|nice) and\b", " ", text)    # filler holding an "and"
    text = re.sub(r"\b(?:back and forth|backwards and forwards|back and forward)\b", "forward and then back", text)
    return text


# ------------------------------------------------------------------------------------------------
# 2. Splitting into clauses, and putting "before"/"after" clauses in the order they are done.

_THEN_WORDS = [
    "and then", "and after that", "after that", "afterwards", "and afterwards", "after which", "after this",
    "and next", "then", "and finally", "finally", "and lastly", "lastly", "followed by", "subsequently",
    "later on", "later", "as well as", "plus", "and also",
]
_SEPARATOR = re.compile(
    r"(?P<strong>[;:!?\n()\[\]]|\.(?!\d))|(?P<comma>,)|"
    rf"\b(?P<then>{_alts(_THEN_WORDS)}|next(?! to\b)|"
    r"(?:and )?(?:when|once|after) (?:you are |you have |you re |you ve )?(?:done|finished|ready)"
    r"(?: with (?:that|this|it))?)\b|"
    r"\b(?P<before_that>but before that|but before|but first|before that|before this|before doing that)\b|"
    r"\b(?P<before>before)\b|\b(?P<after>after)\b|\b(?P<and>and)\b")


@dataclass
class _Clause:
    text: str
    part: int
    boundary: str      # what separated it from the previous clause: start, strong, comma
    relation: str      # "", before, after, before_that


def _split(text: str) -> list[_Clause]:
    clauses: list[_Clause] = []
    boundary, relation, pos = "start", "", 0
    for m in [*_SEPARATOR.finditer(text), None]:
        piece = (text[pos:m.start()] if m else text[pos:]).strip()
        if piece:
            clauses.append(_Clause(piece, len(clauses) + 1, boundary, relation))
            boundary, relation = "none", ""
        if m is None:
            break
        pos = m.end()
        kind = m.lastgroup
        if kind in ("strong", "then"):
            boundary = "start" if boundary == "start" else "strong"
        elif kind in ("comma", "and"):
            boundary = boundary if boundary in ("start", "strong") else "comma"
        else:
            relation = kind
    ordered: list[_Clause] = []
    for c in clauses:           # "Y after X" / "Y, but first X": X goes first
        if ordered and (c.relation == "before_that" or (c.relation == "after" and c.boundary in ("comma", "none"))):
            ordered.insert(len(ordered) - 1, c)
        else:
            ordered.append(c)
    i = 0
    while i < len(ordered) - 1:  # "before Y, X": X goes first
        if ordered[i].relation == "before" and ordered[i].boundary in ("start", "strong"):
            ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
            i += 2
        else:
            i += 1
    return ordered


# ------------------------------------------------------------------------------------------------
# 3. Filler and idioms: rewrite a clause into plain "verb + details" words.

_LEADING_FILLER = re.compile(
    r"^(?:(?:hi|hello|hey|yo|ok|okay|alright|all right|so|well|um|uh|er|oh|now|and|then|also|first|firstly|secondly|"
    r"thirdly|lastly|finally|next|to start(?: with)?|to begin(?: with)?|to finish|to end|at the end|in the end|"
    r"start by|begin by|start with|begin with|end by|end with|finish by|finish with|finish off by|finish off with|"
    r"first of all|for starters|great|good|perfect|nice|cool|second|third|fourth|fifth|sixth|last|no|yes|sorry|"
    r"oops|instead)\b\s*)+")
_FILLER = re.compile(r"\b(?:" + "|".join([
    r"please", r"pls", r"plz", r"kindly", r"robot", r"buddy", r"for me", r"thank you(?: very much| so much)?",
    r"thanks(?: a lot)?", r"cheers", r"right now", r"now", r"immediately", r"just", r"really", r"actually", r"simply",
    r"gently", r"carefully", r"nicely", r"smoothly", r"calmly", r"properly", r"normally", r"naturally", r"steadily",
    r"softly", r"firmly", r"if you (?:can|could|would|like|please|do not mind|dont mind)", r"when you are ready",
    r"when ready", r"as well", r"of course", r"also", r"okay", r"ok",
    r"would you (?:mind|be so kind as to|kindly)", r"do you mind", r"be so kind as to",
    r"(?:could|can|would|will) you(?: please| kindly| possibly| maybe| now)?",
    r"i would (?:like|love|want)(?: for)? you to", r"i would love it if you (?:would|could)",
    r"i (?:want|need) you to", r"i would like to see you", r"show me (?:how )?(?:that )?you can",
    r"you (?:should|need to|have to|must|can|could|may|will)", r"go ahead and", r"go on and", r"let us", r"lets",
    r"try (?:to|and)", r"make sure (?:to|you)", r"be sure to", r"remember to", r"do not forget to", r"proceed to",
    r"(?:keep|continue|carry on|start|begin)(?= \w+ing\b)", r"you are going to", r"time to",
]) + r")\b")

_LIMB_MODS = r"((?:(?:your|the|my|both|left|right|2|1|either|each) )*)"
_IDIOMS: list[tuple[str, str]] = [
    # staying still
    (r"\b(?:do not|never) (?:move|do anything)\b", "wait"),
    (r"\b(?:hold|stay|stand|keep|be|remain|freeze) (?:still|steady|motionless|put|there|here|where you are|"
     r"in place|like that|in that position|in this position)\b", "wait"),
    (r"\b(?:do nothing|hold on|hang on|chill(?: out)?|take (?:a |5 )?(?:break|breather|rest|pause)|stop(?: moving)?|"
     r"hold (?:it|that|this|the|your)? ?(?:pose|position|posture)|hold (?:it|that|this)(?! (?:up|out|down|high)))\b",
     "wait"),
    (r"\brelax\b(?!.*\b(?:arms?|hands?)\b)", "wait"),
    (r"\brelax\b", "lower"),
    # sitting, standing, squatting, bending
    (r"\b(?:have|take|grab) an? seat\b|\bbe seated\b|\bsit (?:back )?down\b|\bsit back\b", "sit"),
    (r"\b(?:get|stand|come|rise) (?:back )?up\b|\bstand (?:tall|straight|upright|up straight|normally)\b|"
     r"\bstraighten(?: up| yourself| out| your back| your body)?\b|"
     r"\b(?:return|go back|come back|get back|back) to (?:a |the |your )?(?:standing|neutral|starting|initial)"
     r"(?: position| pose| posture)?\b|\b(?:neutral|standing) (?:pose|position)\b", "stand"),
    (r"\b(?:bend|flex) (?:your |the |both )?knees\b|\b(?:get|go|drop|crouch|duck|kneel|squat) down(?: low)?\b|"
     r"\blower (?:yourself|your body|your hips)\b|\bget low\b", "squat"),
    (r"\b(?:take|make|give|do|perform) (?:an? )?(?:little |small |deep |quick |polite |short |big )?bow\b|"
     r"\bbow down\b", "bow"),
    (r"\b(?:lean|bend|tilt)(?: your body| yourself)? (?:back|backwards?|sideways|to the (?:left|right|side)|"
     r"to your (?:left|right)|left|right)\b", "tilt"),
    (r"\btouch (?:your |the )?(?:toes|feet|floor|ground)\b|"
     r"\breach (?:down|for the floor|to the floor|for the ground)\b|"
     r"\b(?:bend|lean) (?:over|down|forwards?)\b", "bend"),
    # arms
    (r"\b(?:say|wave|wave an?|bid|give an?) (?:hi|hello|hey|goodbye|good bye|bye bye|bye|farewell|hiya|howdy)\b",
     "wave"),
    (rf"\b(?:(?:put|stick|throw|get|bring|lift|raise|move|reach|stretch) )?(?<!hold )(?<!keep )"
     rf"{_LIMB_MODS}(hands?|arms?) "
     r"(?:up|upwards|in the air|into the air|overhead|over your head|above your head|high|to the sky|up high)\b",
     r"raise \1\2"),
    (rf"\b(?:put|stick|throw|get|bring|lift|raise|move) up {_LIMB_MODS}(hands?|arms?)\b", r"raise \1\2"),
    (r"\b(?:reach|stretch|point) (?:up|upwards|for the sky|to the sky|to the ceiling|high|skyward)\b", "raise"),
    (r"\bhigh 5\b", "raise right hand"),
    (rf"\b(?:(?:put|bring|drop|let|lower|move|get|take|rest|lay) )?{_LIMB_MODS}(hands?|arms?) "
     r"(?:down|downwards|back down|to (?:your |the )?sides?|by (?:your |the )?sides?|at (?:your |the )?sides?|"
     r"fall|drop|hang)\b", r"lower \1\2"),
    (rf"\b(?:put|bring|drop|let|lower|move|get|take) down {_LIMB_MODS}(hands?|arms?)\b", r"lower \1\2"),
    (r"\bshake (?:my |your |our )?hands?\b|\b(?:take|hold) my hand\b|\b(?:give|offer) (?:me )?(?:your |an? )?hand\b",
     "reach right hand"),
    (r"\brest (?:your |the )?(arms?|hands?)\b", r"lower \1"),
    (r"\b(?:hold|stick|put|stretch|reach|extend) out\b", "reach"),
    (r"\bhand (?:me|over|it to me)\b|\blet go(?: of)?\b", "place"),
    (r"\b2 (arms|hands)\b", r"both \1"),
    # walking, stepping, turning
    (r"\bstep (?:closer|nearer|towards? me|to me)\b", "step forward"),
    (r"\b(?:come|get|move|go|walk)(?: over)? (?:here|closer|nearer|to me|towards? me|this way)\b", "walk forward"),
    (r"\bcome back\b", "walk forward"),
    (r"^back (?:up|off|away)\b|\b(?:go|move|walk|get) away\b|\bretreat\b|\bmove back\b", "walk backward"),
    (r"\bapproach\b", "walk forward to"),
    (r"\bgo (?:straight )?ahead\b|\bgo straight\b|\bmove ahead\b|\bgo on\b", "walk forward"),
    (r"\b(?:go for|take) an? (?:short |little |small )?walk\b", "walk"),
    (r"\btake (?:an? |1 )?(?:small|little|tiny|short|baby) (?:step|pace|stride)\b|\bstep a little\b", "step a little"),
    (r"\btake (?:an? |1 )?(?:big |quick |single |large |long |full )?(?:step|pace|stride)\b", "step"),
    (r"\btake (\d+(?:\.\d+)?) (?:small |little |big |short |quick |tiny |large |long )?(steps|paces|strides)\b",
     r"step \1 \2"),
    (r"\bsidestep\b|\bside step\b", "step aside"),
    (r"\b(step|walk)\b(.*?) (?:with|using|leading with) (?:your |the )?(?:left |right )?(?:foot|leg)\b", r"\1\2"),
    (r"\b(?:about face|about turn|u turn|turn about|"
     r"face (?:the (?:other|opposite) (?:way|direction)|backwards?|away|back)|"
     r"turn (?:your )?back|turn (?:to face |to )?(?:the other way|the opposite (?:way|direction)))\b", "turn around"),
    (r"\b(turn|spin|rotate|pivot|twirl)\b(.*?) (?:in place|on the spot|where you are)\b", r"\1\2"),
    (r"\b(turn|spin|rotate|pivot|twirl)\b(.*?) in an? (?:full |complete |whole )?circle\b", r"\1\2 a 1 turn"),
    (r"\b(turn|spin|rotate|pivot)\b(.*?) (?:so as |in order )?to face\b.*$", r"\1\2"),
    # repeating
    (r"\bdo it all(?: over)? again\b|\brepeat (?:it all|all(?: of)?(?: that| this| it)?|everything|"
     r"the whole (?:thing|sequence|routine|lot)|the (?:entire |whole )?sequence|from the (?:start|top|beginning))\b",
     "repeat all"),
    (r"\b(?:do|repeat) (?:it|that|this|the same(?: thing)?|the last (?:one|step|move|action|thing|part)|"
     r"the previous (?:one|step|move|action))(?: (?:again|once more|1 more time))?\b|"
     r"\b(?:do )?the same(?: thing)?(?: again)?\b(?! (?:arm|arms|hand|hands|side|one|time))", "repeat last"),
    (r"^(?:again|once more|1 more time|same again|once again)$", "repeat last"),
]
_IDIOMS_RE = [(re.compile(p), r) for p, r in _IDIOMS]

# ------------------------------------------------------------------------------------------------
# 4. The lexicon: verb synonyms -> families, and the words that may appear around them.

_VERBS = {
    "walk": "walk", "go": "walk", "move": "walk", "advance": "walk", "proceed": "walk",
    "march": "walk", "come": "walk", "travel": "walk", "stroll": "walk",
    "step": "step", "shuffle": "step",
    "turn": "turn", "rotate": "turn", "pivot": "turn", "spin": "spin", "twirl": "spin", "pirouette": "spin",
    "face": "face",
    "reach": "reach", "point": "reach", "extend": "reach", "stretch": "reach", "offer": "reach",
    "raise": "raise", "lift": "raise",
    "lower": "lower",
    "wave": "wave", "greet": "wave",
    "bend": "bend", "bow": "bend", "lean": "bend",
    "squat": "squat", "crouch": "squat", "kneel": "squat", "duck": "squat",
    "sit": "sit",
    "stand": "stand", "rise": "stand", "straighten": "stand",
    "pick": "pickup", "grab": "pickup", "grasp": "pickup", "take": "pickup", "get": "pickup", "fetch": "pickup",
    "collect": "pickup", "seize": "pickup", "grip": "pickup", "snatch": "pickup",
    "put": "put", "place": "put", "set": "put", "drop": "put", "release": "put", "leave": "put", "lay": "put",
    "hold": "hold", "keep": "hold",
    "wait": "idle", "pause": "idle", "rest": "idle", "freeze": "idle", "stay": "idle", "stop": "idle",
    "remain": "idle",
    "repeat": "repeat", "redo": "repeat",
    "do": "do", "make": "do", "perform": "do", "give": "do", "try": "do", "show": "do",
}
"""Verb (base form) -> family; ``_Planning.build_<family>`` turns a family into steps."""
_STRONG_VERBS = {"walk", "go", "move", "come", "turn", "wave", "squat", "sit", "stand", "bend", "bow", "raise", "lower",
                 "reach", "grab", "pick", "crouch", "kneel", "wait", "pause", "rotate", "spin", "greet", "lift", "put",
                 "place", "grasp", "step", "repeat"}
"""Verbs that start a new clause when they follow another verb without a comma ("turn left walk on")."""
_NO_SPLIT_AFTER = {"a", "an", "the", "your", "my", "his", "her", "its", "their", "our", "this", "that", "in", "on",
                   "at", "of", "for", "from", "with", "by", "into", "onto", "some", "any", "no", "another"}
_NOUN_MODIFIERS = {"little", "small", "big", "quick", "short", "nice", "friendly", "deep", "polite", "tiny", "gentle",
                   "full", "slow", "long", "left", "right", "quarter", "half", "single", "good", "proper", "more",
                   "degree", "degrees", "final", "last", "first", "large", "u"}
"""Words between a determiner and a verb used as a noun ("a little wave", "a left turn", "a 90 degree turn")."""
_DIRECT_OBJECT = {"pickup", "put", "raise", "lower", "reach", "hold", "do"}
"""Families whose verb may take any object words ("grab the red cup")."""
_TARGET_PREPS = {
    "walk": {"to", "towards", "toward", "into", "near"}, "step": {"to", "towards", "toward"},
    "wave": {"at", "to", "towards", "toward", "for"}, "sit": {"on", "in", "into", "onto", "at"},
    "reach": {"for", "to", "towards", "toward", "at"}, "squat": {"on", "behind"},
    "bend": {"over", "to", "towards", "toward", "before", "at", "for"}, "stand": {"from", "off"},
}
"""Prepositions after which a family accepts free object words ("walk to the door")."""
_KNOWN = set("""
the a an your my his her its their our this that these those some any each every both either all me you yourself
myself us it them they one same other another someone everyone everybody somebody anyone people
with of to at on in into onto for from by up down out off over away around round about through toward towards near
next beside behind across along past under above below front inside outside upon
and or but so as is are be been being am was were will would can could should shall may might must have has had
again more once twice thrice time times still too very only even here there straight ahead back forward forwards
backward backwards sideways aside side sides left right upward upwards downward downwards high low overhead
together apart little bit slightly tiny touch tad somewhat quick quickly slow slowly fast rapidly briskly swiftly
leisurely gradually hurriedly speedily clockwise counterclockwise anticlockwise counter anti
way distance position pose posture spot direction angle degrees degree deg radians rad
meter meters metre metres m cm mm ft inch inches yard
yards yd km steps paces pace strides stride seconds second sec secs s minutes minute min mins ms moment moments
instant while arm arms hand hands body
small big large short long deep full single nice friendly polite gentle tall few couple several extra last
previous first final original starting start whole thing sequence everything lot entire routine action part
closer nearer further farther onward onwards reverse leftward leftwards rightward rightwards sidewards sideward
sky air ceiling floor ground hi hello bye goodbye good hey you
roughly approximately exactly precisely deeply fully completely instead
""".split())
_HINTS = {
    "look": "there is no head motion; 'turn left/right' turns the whole body",
    "run": "the robot only walks: say 'walk'", "jog": "the robot only walks: say 'walk'",
    "sprint": "the robot only walks: say 'walk'", "jump": "jumping is not in the vocabulary",
    "hop": "hopping is not in the vocabulary", "lie": "lying down is not in the vocabulary",
    "dance": "dancing is not in the vocabulary", "kick": "kicking is not in the vocabulary",
    "clap": "clapping is not in the vocabulary", "nod": "there is no head motion", "head": "there is no head motion",
    "shake": "shaking is not in the vocabulary", "salute": "saluting is not in the vocabulary",
    "tilt": "the torso only bends forward ('bend')",
}
_BODY_PARTS = set("""leg legs foot feet knee knees head elbow elbows finger fingers thumb thumbs toe toes hip hips
shoulder shoulders wrist wrists neck eye eyes mouth torso chest waist""".split())
"""Body parts other than arms and hands: they cannot be moved on their own."""
_PREPOSITIONS = {"on", "to", "at", "with", "above", "over", "behind", "in", "into", "onto", "near", "next", "beside",
                 "under", "below", "from", "towards", "toward", "for"}
_PARTICLES = {"up", "down", "out", "forward", "back", "over", "away", "off", "around", "aside", "upwards", "downwards"}
_ARM_ACTIONS = ("raise_arm", "lower_arm", "wave", "reach")
_OBJECT_ACTIONS = ("grasp", "place")
_PRONOUNS = {"it", "them", "they", "those", "these", "that", "this"}


def _lemma(word: str) -> str:
    """Base form of an inflected verb ("waving" -> "wave", "squats" -> "squat"); else the word."""
    if word in _VERBS:
        return word
    for suffix, add in (("ing", ""), ("ing", "e"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("d", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            stem = word[:-len(suffix)]
            if stem + add in _VERBS:
                return stem + add
            if suffix in ("ing", "ed") and len(stem) > 2 and stem[-1] == stem[-2] and stem[:-1] in _VERBS:
                return stem[:-1]            # sitting -> sit, stepped -> step
    return word


# ------------------------------------------------------------------------------------------------
# 5. One clause -> a frame: the verb family and the details found in the words.

@dataclass
class _Frame:
    """What one clause says."""

    text: str                         # the clause as quoted in errors
    part: int                         # 1-based position of the clause in the instruction
    family: str | None = None         # verb family (values of _VERBS); None: elliptic ("then right")
    verb: str = ""
    tokens: list[str] = field(default_factory=list)
    side: str | None = None           # explicit left/right/both
    other: bool = False               # "the other arm"
    same: bool = False                # pronoun, "same", "again": the previous limb
    limb: bool = False                # arm(s)/hand(s) named
    noun: bool = False                # an object word ("the cup")
    pronoun: bool = False
    particles: frozenset = frozenset()
    direction: str | None = None      # walk/step
    turn_sign: float | None = None
    around: bool = False
    distance_m: float | None = None
    steps_n: float | None = None
    angle_deg: float | None = None
    bare: float | None = None         # a number without unit
    duration_s: float | None = None
    loose_bit: bool = False           # "a bit"/"a little" without "for": small amount, or 2 s of waiting
    count: int | None = None
    again: bool = False
    speed: float = 1.0
    scope_all: bool = False
    unknown: list[str] = field(default_factory=list)

    def has_details(self) -> bool:
        return any(v is not None for v in (self.side, self.direction, self.turn_sign, self.distance_m, self.steps_n,
                                           self.angle_deg, self.bare, self.duration_s, self.count)) or \
            self.other or self.limb or self.around or self.loose_bit


def _first(patterns: list[tuple[str, object]], text: str):
    """Value of the pattern matching earliest in ``text`` (ties: the earlier pattern), else None."""
    best = None
    for pattern, value in patterns:
        m = re.search(pattern, text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), value)
    return None if best is None else best[1]


_WALK_DIRECTIONS = [
    (r"\b(?:forwards?|ahead|straight|onwards?|closer|nearer|towards? me|to me|front)\b", "forward"),
    (r"\b(?:backwards?|back|in reverse|reverse|away|behind)\b", "backward"),
    (r"\b(?:left|leftwards?)\b", "left"), (r"\b(?:right|rightwards?)\b", "right"),
]
_SIDEWAYS = r"\b(?:sideways|aside|to the side|sidewards?|side)\b"
_TURN_SIGNS = [(r"\b(?:counter ?clockwise|anti ?clockwise|left|leftwards?)\b", 1.0),
               (r"\b(?:clockwise|right|rightwards?)\b", -1.0)]


def _take(pattern: str, text: str, fn) -> str:
    """Calls ``fn(match)`` for every match of ``pattern`` and blanks the matches out of ``text``."""
    def sub(m):
        fn(m)
        return " "
    return re.sub(pattern, sub, text)


def _number(tok: str) -> float:
    return 1.0 if tok in ("a", "an") else float(tok)


def _frame(text: str, part: int) -> _Frame:
    f = _Frame(text=text, part=part)
    s = f" {text} "

    def set_count(m):
        f.count = int(float(m[1])) if m[1][0].isdigit() else {"once": 1, "twice": 2, "thrice": 3}[m[1]]
        f.again = f.again or bool(m[2])

    def set_again(_m):
        f.again = True

    def set_duration(m):
        f.duration_s = _number(m[1]) * _TIME_UNITS[m[2]]

    def set_word_duration(m):
        f.duration_s = {"moment": 1.0, "moments": 2.0, "instant": 0.5, "sec": 1.0, "while": 5.0, "bit": 2.0,
                        "little": 2.0}[m[1].split()[-1]]

    def set_distance(m):
        f.distance_m = _number(m[1]) * _DIST_UNITS[m[2]]

    def set_steps(m):
        f.steps_n = _number(m[1])

    def set_angle(m):
        f.angle_deg = float(m[1]) * _ANGLE_UNITS[m[2]]

    def set_bit(_m):
        f.loose_bit = True

    def set_speed(m):
        f.speed = 1.5 if m[1] in ("slowly", "slow", "leisurely", "gradually") else 0.7

    s = _take(rf"\b{_NUM} (more )?times?\b", s, set_count)
    s = _take(r"\b(once|twice|thrice)( more)?\b", s, set_count)
    s = _take(r"\b(?:again|another time|1 more time)\b", s, set_again)
    s = _take(rf"\b(?:for )?(?:about |around |roughly |approximately |at least )?({_NUM[1:-1]}|an?) "
              rf"({_alts(_TIME_UNITS)})\b", s, set_duration)
    s = _take(r"\b(?:for )?(?:an? |few |just an? )?(moments?|instant|sec|(?:little |short )?while)\b", s,
              set_word_duration)
    s = _take(r"\bfor (?:an? )?(?:little |tiny )?(bit|little)\b", s, set_word_duration)
    s = _take(r"\b(?:briefly|momentarily)\b", s, lambda m: setattr(f, "duration_s", 1.0))
    s = _take(rf"\b({_NUM[1:-1]}|an?) ({_alts(_DIST_UNITS)})\b", s, set_distance)
    s = _take(rf"\b({_NUM[1:-1]}|an?) (?:small |little |big |short |tiny |large |long )?({_alts(_STEP_UNITS)})\b", s,
              set_steps)
    s = _take(rf"\b{_NUM} ({_alts(_ANGLE_UNITS)})\b", s, set_angle)
    s = _take(r"\b(?:just )?(?:a little bit|a little|a bit|a tiny bit|a touch|slightly|a tad|somewhat)\b", s, set_bit)
    s = _take(r"\b(slowly|slow|leisurely|gradually|quickly|quick|fast|rapidly|briskly|swiftly|speedily|hurriedly)\b",
              s, set_speed)
    numbers: list[float] = []
    s = _take(rf"(?<![\w.]){_NUM}(?![\w.])", s, lambda m: numbers.append(float(m[1])))
    f.bare = numbers[0] if numbers else None

    tokens = s.split()
    f.tokens = tokens
    verb_at = next((i for i, t in enumerate(tokens) if _lemma(t) in _VERBS), None)
    if verb_at is not None:
        f.verb = _lemma(tokens[verb_at])
        f.family = _VERBS[f.verb]
        if f.family == "do":        # "do 3 squats", "give a wave", "make a left turn"
            noun_at = next((i for i in range(verb_at + 1, len(tokens))
                            if _VERBS.get(_lemma(tokens[i]), "do") != "do"), None)
            if noun_at is not None:
                verb_at, f.verb = noun_at, _lemma(tokens[noun_at])
                f.family = _VERBS[f.verb]
            elif f.angle_deg is not None or f.bare is not None:
                f.family = "turn"
        if f.family == "repeat":     # "repeat (twice)": everything so far; "repeat that": the last clause
            f.scope_all = "last" not in tokens
    rest = " ".join(tokens)
    f.particles = frozenset(t for t in tokens if t in _PARTICLES)
    f.limb = bool(re.search(r"\b(?:arms?|hands?)\b", rest))
    f.other = bool(re.search(r"\bother\b", rest))
    f.pronoun = any(t in _PRONOUNS for t in tokens) or bool(re.search(r"\bsame\b", rest))
    f.same = f.pronoun or f.again
    if re.search(r"\bboth\b|\b(?:left and right|right and left)\b", rest):
        f.side = "both"
    else:
        m = re.search(r"\b(left|right) (?:arm|hand|one|side)\b|\bwith (?:your |the |my )?(left|right)\b", rest)
        if m:
            f.side = m[1] or m[2]
        elif re.search(r"\b(?:arms|hands)\b", rest):
            f.side = "both"
        else:
            m = re.search(r"\b(left|right)\b", rest)
            f.side = m[1] if m else None
    f.direction = _first(_WALK_DIRECTIONS, rest) or ("left" if re.search(_SIDEWAYS, rest) else None)
    f.turn_sign = _first(_TURN_SIGNS, rest)
    f.around = bool(re.search(r"\b(?:a)?round\b|\bback\b", rest))

    # Words not understood: outside the lexicon and outside an object phrase.
    free_from = len(tokens)
    if verb_at is not None:
        if f.family in _DIRECT_OBJECT or f.verb == "greet":
            free_from = verb_at + 1
        else:
            preps = _TARGET_PREPS.get(f.family, set())
            free_from = next((i + 1 for i in range(verb_at + 1, len(tokens)) if tokens[i] in preps), len(tokens))

    def understood(i: int) -> bool:
        t = tokens[i]
        if t in _BODY_PARTS:    # "raise your foot" no, "get down on your knees" yes
            return any(u in _PREPOSITIONS for u in tokens[max(free_from - 1, 0):i]) and i >= free_from
        return i >= free_from or t in _KNOWN or _lemma(t) in _VERBS
    f.noun = any(t not in _KNOWN and t not in _BODY_PARTS and _lemma(t) not in _VERBS for t in tokens[free_from:])
    f.unknown = [t for i, t in enumerate(tokens) if not understood(i)]
    return f


def _sub_clauses(text: str) -> list[str]:
    """Splits a clause where a second verb starts without a separator ("turn left walk forward")."""
    tokens = text.split()
    first = next((i for i, t in enumerate(tokens) if _lemma(t) in _VERBS), None)
    if first is None:
        return [text]
    for j in range(first + 1, len(tokens)):
        k = j - 1
        while k > first and (tokens[k] in _NOUN_MODIFIERS or tokens[k][0].isdigit()):
            k -= 1
        unit = tokens[j] in ("turn", "step", "spin") and tokens[j - 1][0].isdigit()     # "1 turn"
        if tokens[j] in _STRONG_VERBS and tokens[j - 1] not in _NO_SPLIT_AFTER and tokens[k] not in _NO_SPLIT_AFTER \
                and not unit:
            cut = j - 1 if tokens[j - 1] == "to" else j     # "bend down to pick it up"
            head, tail = " ".join(tokens[:cut]), " ".join(tokens[j:])
            rest = _sub_clauses(tail)
            if tokens[j - 1] == "to" and _VERBS[tokens[j]] == _VERBS[_lemma(tokens[first])]:
                rest = rest[1:]     # "bend over to touch your toes": one bend
            return [head, *rest]
    return [text]


# ------------------------------------------------------------------------------------------------
# 6. The planner.

class RuleBasedPlanner(TaskPlanner):
    """Deterministic, offline planner over :data:`exoactor.planning.VOCABULARY` (grammar: module docstring)."""

    name = "rules"

    def plan(self, instruction: str) -> list[Step]:
        if instruction is None or not instruction.strip():
            raise PlanningError("the instruction is empty; say what the robot should do, "
                                "e.g. 'wave with the right hand'")
        if len(instruction) > MAX_INSTRUCTION_CHARS:
            raise PlanningError(f"the instruction is longer than {MAX_INSTRUCTION_CHARS} characters")
        steps = _Planning(instruction).run()
        return validate_plan([s.to_dict() for s in steps])


def _clause_frames(clause: _Clause, error) -> list[_Frame]:
    at_once = r"\b(?<!a )(?<!little )(?<!short )(?:while|whilst)\b|\b(?:simultaneously|at the same time|meanwhile)\b"
    if re.search(at_once, clause.text):
        raise error(clause.text, clause.part, "the robot does one action at a time; say 'X, then Y' instead")
    text = _LEADING_FILLER.sub("", _FILLER.sub(" ", f" {clause.text} ").strip())
    for pattern, repl in _IDIOMS_RE:
        text = pattern.sub(repl, re.sub(r"\s+", " ", text).strip())
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    if re.search(r"\b(?:do not|does not|never|not|no longer)\b", text):
        raise error(clause.text, clause.part, "negative instructions cannot be planned; say what the robot should do")
    frames = [_frame(sub, clause.part) for sub in _sub_clauses(text)]
    for f in frames:
        f.text = clause.text
    return [f for f in frames if f.family or f.unknown or f.has_details() or f.again or f.pronoun]


def _sides_kind(family: str | None) -> str:
    return {"raise": "arm", "lower": "arm", "wave": "arm", "reach": "arm", "pickup": "object",
            "put": "object"}.get(family or "", "")


class _Planning:
    """Planning of one instruction: frames in order, each built into steps against what came before."""

    def __init__(self, instruction: str):
        self.instruction = instruction
        self.steps: list[Step] = []
        self.outputs: list[list[Step]] = []     # steps of each clause
        self.resolved: list[_Frame] = []

    def run(self) -> list[Step]:
        frames = [f for c in _split(_normalise(self.instruction)) for f in _clause_frames(c, self.error)]
        if not frames:
            raise PlanningError(f"no action found in {self.instruction!r}; say what the robot should do, "
                                f"e.g. 'wave with the right hand'")
        for a, b in zip(frames, frames[1:]):    # "raise and lower your left arm": the bare verb takes the side
            if a.family and a.side is None and len(a.tokens) <= 2 and not (a.other or a.same or a.limb or a.noun) \
                    and b.side is not None and _sides_kind(a.family) and _sides_kind(a.family) == _sides_kind(b.family):
                a.side = b.side
        for f in frames:
            f = self.resolve(f)
            out = self.build(f)
            if out and out[0].action == "bend" and self.steps and self.steps[-1].action == "bend" and \
                    f.family != "repeat" and not f.again and f.count is None:
                out = out[1:]       # "bend over and touch your toes": one bend
            if len(self.steps) + len(out) > MAX_STEPS:
                raise self.too_many(len(self.steps) + len(out))
            self.steps.extend(out)
            self.outputs.append(out)
            self.resolved.append(f)
        return self.steps

    # -- errors -----------------------------------------------------------------------------------

    def error(self, clause: str, part: int, why: str) -> PlanningError:
        return PlanningError(f"could not understand '{clause}' (part {part} of {self.instruction!r}): {why}; "
                             f"known actions: {', '.join(sorted(VOCABULARY))}")

    def unknown_error(self, f: _Frame, words: list[str] | None = None) -> PlanningError:
        words = list(dict.fromkeys(words if words is not None else f.unknown))
        if not words:
            return self.error(f.text, f.part, "no action word in it")
        hints = [f"{w}: {_HINTS[w]}" for w in words if w in _HINTS]
        if any(w in _BODY_PARTS for w in words):
            hints.append("only the arms and hands move on their own")
        listed = ", ".join(repr(w) for w in words)
        return self.error(f.text, f.part, f"unknown word{'s' if len(words) > 1 else ''} {listed}"
                          + (f" ({'; '.join(hints)})" if hints else ""))

    def limit_error(self, f: _Frame, why: str) -> PlanningError:
        return PlanningError(f"cannot plan '{f.text}' (part {f.part} of {self.instruction!r}): {why}")

    @staticmethod
    def too_many(n: int) -> PlanningError:
        return PlanningError(f"the instruction needs {n} steps or more; at most {MAX_STEPS} are allowed")

    # -- frames -----------------------------------------------------------------------------------

    def resolve(self, f: _Frame) -> _Frame:
        """An elliptic clause ("then right") takes the verb and unchanged details of the previous one."""
        if f.family is not None:
            if f.unknown:
                raise self.unknown_error(f)
            return f
        if f.again or (f.pronoun and not f.unknown and not f.has_details()):
            return replace(f, family="repeat")
        prev = self.resolved[-1] if self.resolved else None
        noun_phrase = prev is not None and prev.family in ("pickup", "put") and bool(f.tokens) and \
            f.tokens[0] in ("the", "a", "an", "your", "my", "this", "that", "these", "those", "some", "it", "them")
        if prev is None or prev.family == "repeat" or (f.unknown and not noun_phrase) or \
                not (f.has_details() or noun_phrase):
            raise self.unknown_error(f)
        g = replace(prev, text=f.text, part=f.part, tokens=f.tokens, count=f.count, again=f.again,
                    duration_s=f.duration_s, speed=f.speed, unknown=[], noun=prev.noun or noun_phrase)
        if f.side is not None or f.other or f.same:
            g.side, g.other, g.same = f.side, f.other, f.same
        turning = prev.family in ("turn", "spin", "face")
        if any(v is not None for v in (f.distance_m, f.steps_n, f.angle_deg, f.bare)) or f.loose_bit or \
                (turning and f.around):
            g.distance_m, g.steps_n, g.angle_deg, g.bare = f.distance_m, f.steps_n, f.angle_deg, f.bare
            g.loose_bit, g.around = f.loose_bit, f.around
        if f.direction is not None or f.turn_sign is not None:
            g.direction, g.turn_sign = f.direction, f.turn_sign
        return g

    def last(self, actions) -> Step | None:
        return next((s for s in reversed(self.steps) if s.action in actions), None)

    def referent_is_arm(self) -> bool:
        """Whether "it"/"them" most likely means an arm (else a held object)."""
        last = self.last(_ARM_ACTIONS + _OBJECT_ACTIONS)
        return last is not None and last.action in _ARM_ACTIONS

    def side(self, action: str, f: _Frame) -> str:
        if f.side is not None:
            return f.side
        kind = _ARM_ACTIONS if action in _ARM_ACTIONS else _OBJECT_ACTIONS
        if f.same or f.other:
            ref = self.last(kind) or self.last(_ARM_ACTIONS + _OBJECT_ACTIONS)
        else:   # an arm gesture keeps the arm of the previous one; place the hand that grasped
            ref = None if action == "grasp" else self.last(kind)
        base = ref.side if ref else VOCABULARY[action].default_side
        return {"left": "right", "right": "left"}.get(base, base) if f.other else base

    def duration(self, f: _Frame, default: float) -> float:
        t = f.duration_s if f.duration_s is not None else default * f.speed
        if not (MIN_DURATION_S <= t <= MAX_DURATION_S):
            raise self.limit_error(f, f"duration {t:g} s outside {MIN_DURATION_S:g}..{MAX_DURATION_S:g} s")
        return t

    def make(self, action: str, f: _Frame, amount: float | None = None, direction: str = "",
             duration_s: float | None = None) -> Step:
        spec = VOCABULARY[action]
        side = self.side(action, f) if spec.has_side else ""
        amount = spec.default_amount if amount is None else amount
        duration_s = self.duration(f, spec.default_duration_s) if duration_s is None else duration_s
        return Step(action=action, side=side, amount=float(amount) if spec.amount_unit else 0.0,
                    amount_unit=spec.amount_unit, direction=direction, duration_s=float(duration_s),
                    prompt=prompt_for(action, side, amount, spec.amount_unit, direction))

    # -- frames -> steps --------------------------------------------------------------------------

    def build(self, f: _Frame) -> list[Step]:
        if f.family == "repeat":
            return self.repeat(f)
        count = f.count
        if count is None and f.bare is not None and f.family not in ("walk", "step", "turn", "spin", "face", "idle"):
            if f.bare != int(f.bare) or f.bare < 1:
                raise self.unknown_error(f, [_fmt(f.bare)])
            count = int(f.bare)     # "do 3 squats"
        count = 1 if count is None else count
        if count < 1:
            raise self.limit_error(f, f"cannot do something {count} times")
        if len(self.steps) + count > MAX_STEPS:
            raise self.too_many(len(self.steps) + count)
        return getattr(self, f"build_{f.family}")(f) * count

    def repeat(self, f: _Frame) -> list[Step]:
        if not self.outputs:
            raise self.error(f.text, f.part, "there is nothing to repeat yet")
        base = list(self.steps) if f.scope_all else list(self.outputs[-1])
        count = f.count if f.count is not None else int(f.bare) if f.bare is not None else 1
        if count < 1 or len(self.steps) + count * len(base) > MAX_STEPS:
            raise self.too_many(len(self.steps) + count * len(base))
        if f.side is not None or f.other:     # "do the same with the other hand"
            mirror = {"left": "right", "right": "left", "both": "both"}
            base = [replace(s, side=f.side or mirror[s.side],
                            prompt=prompt_for(s.action, f.side or mirror[s.side], s.amount, s.amount_unit, s.direction))
                    if s.side else s for s in base]
        return base * count

    def build_walk(self, f: _Frame) -> list[Step]:
        if f.limb:      # "move your left arm up"
            return self.limb_move(f)
        spec = VOCABULARY["walk"]
        d = f.distance_m
        if d is None and f.steps_n is not None:
            d = f.steps_n * STEP_LENGTH_M
        if d is None and f.bare is not None:
            d = f.bare
        if d is None and f.loose_bit:
            d = 0.5
        if d is None and f.duration_s is not None:  # "walk forward for 5 seconds"
            d = min(spec.max_amount, max(spec.min_amount, (f.duration_s - 2.0) / 2.0))
        d = spec.default_amount if d is None else d
        if not spec.amount_in_limits(d):
            raise self.limit_error(f, f"walking distance {d:g} m outside {spec.limits_text()}")
        return [self.make("walk", f, amount=d, direction=f.direction or "forward",
                          duration_s=self.duration(f, max(2.0, 2.0 + 2.0 * d)))]

    def build_step(self, f: _Frame) -> list[Step]:
        spec = VOCABULARY["step"]
        d = f.distance_m
        if d is None and f.steps_n is None and f.bare is not None:
            d = f.bare * STEP_LENGTH_M
        if d is None and f.steps_n is not None:
            d = f.steps_n * STEP_LENGTH_M
        if d is None and f.loose_bit:
            d = STEP_LENGTH_M / 2
        d = spec.default_amount if d is None else d
        if d > spec.max_amount:         # "take three steps forward" is a walk
            return self.build_walk(replace(f, distance_m=d, steps_n=None, bare=None))
        if not spec.amount_in_limits(d):
            raise self.limit_error(f, f"step length {d:g} m outside {spec.limits_text()}")
        duration = self.duration(f, max(spec.default_duration_s, spec.default_duration_s * d / STEP_LENGTH_M))
        return [self.make("step", f, amount=d, direction=f.direction or "forward", duration_s=duration)]

    def build_turn(self, f: _Frame, full_turn: bool = False) -> list[Step]:
        spec = VOCABULARY["turn"]
        deg = f.angle_deg if f.angle_deg is not None else f.bare
        if deg is None and f.around:
            deg = 360.0 if full_turn else 180.0
        if deg is None and f.loose_bit:
            deg = 45.0
        if deg is None:
            deg = 360.0 if full_turn else math.degrees(spec.default_amount)
        if not spec.amount_in_limits(math.radians(deg)):
            lo, hi = math.degrees(spec.min_amount), math.degrees(spec.max_amount)
            raise self.limit_error(f, f"turn angle {deg:g} degrees outside {lo:g}..{hi:g} degrees")
        sign = f.turn_sign if f.turn_sign is not None else 1.0
        return [self.make("turn", f, amount=sign * math.radians(deg),
                          duration_s=self.duration(f, max(2.0, 3.0 * deg / 90.0)))]

    def build_spin(self, f: _Frame) -> list[Step]:
        return self.build_turn(f, full_turn=True)

    def build_face(self, f: _Frame) -> list[Step]:
        if f.turn_sign is None and f.angle_deg is None and f.bare is None and not f.around:
            raise self.error(f.text, f.part, "'face' needs a direction: left, right or around")
        return self.build_turn(f)

    def limb_move(self, f: _Frame) -> list[Step]:
        """An arm moved by a generic verb ("move your arm up", "hold your hand out")."""
        if f.particles & {"up", "upwards"}:
            return [self.make("raise_arm", f)]
        if f.particles & {"down", "downwards"}:
            return [self.make("lower_arm", f)]
        if f.particles & {"out", "forward"} or f.direction == "forward":
            return [self.make("reach", f)]
        raise self.error(f.text, f.part, "say which way the arm should move: up, down or out")

    def build_reach(self, f: _Frame) -> list[Step]:
        return [self.make("reach", f)]

    def build_wave(self, f: _Frame) -> list[Step]:
        return [self.make("wave", f)]

    def build_bend(self, f: _Frame) -> list[Step]:
        return [self.make("bend", f)]

    def build_squat(self, f: _Frame) -> list[Step]:
        return [self.make("squat", f)]

    def build_sit(self, f: _Frame) -> list[Step]:
        return [self.make("sit", f)]

    def build_stand(self, f: _Frame) -> list[Step]:
        return [self.make("stand", f)]

    def build_idle(self, f: _Frame) -> list[Step]:
        t = f.duration_s if f.duration_s is not None else f.bare if f.bare is not None else 2.0 if f.loose_bit else None
        return [self.make("idle", replace(f, duration_s=t))]

    def build_raise(self, f: _Frame) -> list[Step]:
        if f.noun and not f.limb:       # "lift the box"
            return self.build_pickup(f)
        return [self.make("raise_arm", f)]

    def no_body_parts(self, f: _Frame) -> None:
        """Arms placed on another body part ("hands on your head") are not in the vocabulary."""
        parts = [t for t in f.tokens if t in _BODY_PARTS]
        if parts and f.limb:
            raise self.unknown_error(f, parts)

    def build_lower(self, f: _Frame) -> list[Step]:
        self.no_body_parts(f)
        if (f.noun and not f.limb) or (f.pronoun and not f.limb and not self.referent_is_arm()):
            return [self.make("place", f)]     # "lower the box", "pick it up and lower it"
        return [self.make("lower_arm", f)]

    def build_put(self, f: _Frame) -> list[Step]:
        self.no_body_parts(f)
        if f.particles & {"up", "upwards"} and (f.limb or f.pronoun) and not f.noun:
            return [self.make("raise_arm", f)]     # "put them up"
        if f.limb and not f.noun:
            return self.limb_move(f) if f.particles & {"up", "out", "forward"} else [self.make("lower_arm", f)]
        if not f.noun and f.verb != "place" and self.referent_is_arm():
            return [self.make("lower_arm", f)]     # "raise your arm, then put it down"
        return [self.make("place", f)]

    def build_pickup(self, f: _Frame) -> list[Step]:
        if f.verb == "get" and not (f.noun or f.pronoun):
            raise self.unknown_error(f, ["get"])
        plain = replace(f, duration_s=None, speed=1.0)
        bend = [] if self.steps and self.steps[-1].action == "bend" else [self.make("bend", plain)]
        return bend + [self.make("grasp", f), self.make("stand", plain)]

    def build_hold(self, f: _Frame) -> list[Step]:
        hold = None if f.duration_s is None else self.make("idle", f)
        f = replace(f, duration_s=None)
        if f.particles & {"up", "upwards"} or (f.limb and not f.particles):
            action = [self.make("raise_arm", f)]
            if self.steps and self.steps[-1] == replace(action[0], duration_s=self.steps[-1].duration_s):
                action = []     # "raise your arm and hold it up for 3 seconds"
        elif f.particles & {"out", "forward"}:
            action = [self.make("reach", f)]
        elif f.noun:
            action = self.build_pickup(f)
        else:
            return [hold or self.make("idle", f)]
        return action + ([hold] if hold else [])

    def build_do(self, f: _Frame) -> list[Step]:
        if f.verb == "give" and (f.noun or f.pronoun):     # "give me the cup", "give it to me"
            return [self.make("place", f)]
        raise self.unknown_error(f, f.unknown or [t for t in f.tokens if t not in _KNOWN and _lemma(t) not in _VERBS]
                                 or [f.verb])
