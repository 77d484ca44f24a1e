"""Action class names of NTU RGB+D 60/120, PKU-MMD and freqjax's synthetic dataset, and
prompt templates.

Index `i` of a table is the training label `i`:
- NTU RGB+D: label = action id − 1 (`A001` → 0). The names are the dataset's own list,
  "Action Classes" in the README of https://github.com/shahroudy/NTURGB-D (A1–A60 are
  NTU RGB+D 60, A1–A120 NTU RGB+D 120), copied verbatim without the trailing full stop,
  including the dataset's spelling ("hush (quite)", "wear on glasses", the typographic
  apostrophe in "grab other person’s stuff").
- PKU-MMD (phase 1 and 2 share the 51 classes): label = id in the `.label` files − 1.
  The names and their order are those of the dataset's `Split/Actions.xlsx`
  (http://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html), as public loaders transcribe
  it; the interaction classes have ids 12, 14, 16, 18, 21, 24, 26, 27.
- freqjax's synthetic dataset (`freqjax.data.synthetic`): label = action id − 1 (`A001`
  → 0), as in NTU RGB+D.
"""
from typing import Sequence

NTU60_CLASSES: tuple[str, ...] = (
    "drink water",  # A001
    "eat meal/snack",
    "brushing teeth",
    "brushing hair",
    "drop",
    "pickup",
    "throw",
    "sitting down",
    "standing up (from sitting position)",
    "clapping",  # A010
    "reading",
    "writing",
    "tear up paper",
    "wear jacket",
    "take off jacket",
    "wear a shoe",
    "take off a shoe",
    "wear on glasses",
    "take off glasses",
    "put on a hat/cap",  # A020
    "take off a hat/cap",
    "cheer up",
    "hand waving",
    "kicking something",
    "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)",
    "jump up",
    "make a phone call/answer phone",
    "playing with phone/tablet",
    "typing on a keyboard",  # A030
    "pointing to something with finger",
    "taking a selfie",
    "check time (from watch)",
    "rub two hands together",
    "nod head/bow",
    "shake head",
    "wipe face",
    "salute",
    "put the palms together",
    "cross hands in front (say stop)",  # A040
    "sneeze/cough",
    "staggering",
    "falling",
    "touch head (headache)",
    "touch chest (stomachache/heart pain)",
    "touch back (backache)",
    "touch neck (neckache)",
    "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person",  # A050
    "kicking other person",
    "pushing other person",
    "pat on back of other person",
    "point finger at the other person",
    "hugging other person",
    "giving something to other person",
    "touch other person's pocket",
    "handshaking",
    "walking towards each other",
    "walking apart from each other",  # A060
)

NTU120_CLASSES: tuple[str, ...] = NTU60_CLASSES + (
    "put on headphone",  # A061
    "take off headphone",
    "shoot at the basket",
    "bounce ball",
    "tennis bat swing",
    "juggling table tennis balls",
    "hush (quite)",
    "flick hair",
    "thumb up",
    "thumb down",  # A070
    "make ok sign",
    "make victory sign",
    "staple book",
    "counting money",
    "cutting nails",
    "cutting paper (using scissors)",
    "snapping fingers",
    "open bottle",
    "sniff (smell)",
    "squat down",  # A080
    "toss a coin",
    "fold paper",
    "ball up paper",
    "play magic cube",
    "apply cream on face",
    "apply cream on hand back",
    "put on bag",
    "take off bag",
    "put something into a bag",
    "take something out of a bag",  # A090
    "open a box",
    "move heavy objects",
    "shake fist",
    "throw up cap/hat",
    "hands up (both hands)",
    "cross arms",
    "arm circles",
    "arm swings",
    "running on the spot",
    "butt kicks (kick backward)",  # A100
    "cross toe touch",
    "side kick",
    "yawn",
    "stretch oneself",
    "blow nose",
    "hit other person with something",
    "wield knife towards other person",
    "knock over other person (hit with body)",
    "grab other person’s stuff",
    "shoot at other person with a gun",  # A110
    "step on foot",
    "high-five",
    "cheers and drink",
    "carry something with other person",
    "take a photo of other person",
    "follow other person",
    "whisper in other person’s ear",
    "exchange things with other person",
    "support somebody with one’s hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",  # A120
)

PKU_MMD_CLASSES: tuple[str, ...] = (
    "bow",  # 1
    "brushing hair",
    "brushing teeth",
    "check time (from watch)",
    "cheer up",
    "clapping",
    "cross hands in front (say stop)",
    "drink water",
    "drop",
    "eat meal/snack",  # 10
    "falling",
    "giving something to other person",
    "hand waving",
    "handshaking",
    "hopping (one foot jumping)",
    "hugging other person",
    "jump up",
    "kicking other person",
    "kicking something",
    "make a phone call/answer phone",  # 20
    "pat on back of other person",
    "pickup",
    "playing with phone/tablet",
    "point finger at the other person",
    "pointing to something with finger",
    "punching/slapping other person",
    "pushing other person",
    "put on a hat/cap",
    "put something inside pocket",
    "reading",  # 30
    "rub two hands together",
    "salute",
    "sitting down",
    "standing up",
    "take off a hat/cap",
    "take off glasses",
    "take off jacket",
    "take out something from pocket",
    "taking a selfie",
    "tear up paper",  # 40
    "throw",
    "touch back (backache)",
    "touch chest (stomachache/heart pain)",
    "touch head (headache)",
    "touch neck (neckache)",
    "typing on a keyboard",
    "use a fan (with hand or paper)/feeling warm",
    "wear jacket",
    "wear on glasses",
    "wipe face",  # 50
    "writing",
)

# The 14 classes of freqjax's synthetic dataset, in label order. This table owns the
# names: the generator's motions (`freqjax.data.synthetic.actions.ACTIONS`) and the
# dataset's sentences (`descriptions.SYNTHETIC_SENTENCES`) follow it.
SYNTHETIC_CLASS_NAMES: tuple[str, ...] = (
    "drink water", "eat meal", "brush teeth", "hand waving", "clapping",
    "kicking something", "jump up", "sit down", "stand up", "bow", "punch",
    "handshaking", "hugging", "pushing other person")

# The built-in tables by dataset name (`--classes` of the embedding CLI). The synthetic
# dataset's names have their own sentences instead (`descriptions.synthetic_descriptions`).
CLASS_TABLES: dict[str, tuple[str, ...]] = {
    "ntu60": NTU60_CLASSES,
    "ntu120": NTU120_CLASSES,
    "pku_mmd": PKU_MMD_CLASSES,
}

# Prompt templates for class-name text, in the manner of CLIP's zero-shot prompts and of
# the skeleton-language papers (LST, GAP): several phrasings of the same action, one
# sentence per template; `{name}` is the class name.
PROMPT_TEMPLATES: tuple[str, ...] = (
    "a person {name}.",
    "a person is doing the action of {name}.",
    "a human action of {name}.",
    "a skeleton of a person {name}.",
    "{name}.",
)


def class_names(dataset: str) -> tuple[str, ...]:
  """The class names of a built-in dataset (`ntu60`, `ntu120`, `pku_mmd`), label order."""
  try:
    return CLASS_TABLES[dataset]
  except KeyError:
    raise ValueError(f"unknown dataset {dataset!r} for class names; choose one of "
                     f"{sorted(CLASS_TABLES)}") from None


def prompts(name: str, templates: Sequence[str] = PROMPT_TEMPLATES) -> list[str]:
  """One sentence per template for a class name, e.g. "a person drink water."."""
  for template in templates:
    if "{name}" not in template:
      raise ValueError(f"prompt template {template!r} has no '{{name}}' field")
  return [template.format(name=name) for template in templates]
