"""Text descriptions of actions: per class or per sample, read, validated and hashed.

Two JSON file formats are read by `load_descriptions`:

Per-class descriptions (ours; several sentences per class, e.g. written by a language
model with body-part phrases)::

  {
    "dataset": "ntu120",                     # optional: a built-in class table
    "classes": {
      "0": ["a person drinks water.", "the right hand lifts a cup to the mouth."],
      "1": ["a person eats a snack.", "..."],
      "hand waving": ["..."]                 # a class name: only when "dataset" is set
    },
    "description": "free text, ignored"      # optional
  }

  Keys are 0-based training labels written as decimal strings (NTU: action id − 1,
  PKU-MMD: label-file id − 1), or, when `"dataset"` names a table of
  `freqjax.text.classes` (`ntu60`, `ntu120`, `pku_mmd`), that table's class names.
  Values are a non-empty list of non-empty sentences (a single string is one sentence).
  Classes may be missing: joining the embeddings to a dataset reports them.

Per-sample descriptions (the format C2VL published for NTU RGB+D and PKU-MMD II)::

  {"S001C001P001R001A001": ["sentence", "..."], "S001C001P001R001A002": ["..."]}

A `Descriptions` keeps the keys (class ids as decimal strings, or sample names) in a fixed
order with their sentences, and a SHA-256 of that content which the embedding file
stores, so an embedding file can be traced back to the text it came from.
"""
import dataclasses
import errno
import hashlib
import json
import os
from typing import Mapping, Optional, Sequence

from freqjax import cli
from freqjax.text import classes

CLASS = "class"
SAMPLE = "sample"

_CLASS_FILE_FIELDS = frozenset({"dataset", "classes", "description"})


class DescriptionsError(cli.UserError, ValueError):
  """A descriptions file or mapping is malformed; the message names the file and field."""


@dataclasses.dataclass(frozen=True)
class Descriptions:
  """Sentences keyed by class id or sample name.

  Attributes:
    kind: `"class"` (keys are 0-based labels as decimal strings, in increasing order) or
      `"sample"` (keys are sample names, in file order).
    keys: the keys, unique.
    sentences: for each key, its sentences (at least one, none empty).
    source: where they came from (a path or a short description), for messages.
  """
  kind: str
  keys: tuple[str, ...]
  sentences: tuple[tuple[str, ...], ...]
  source: str

  def sha256(self) -> str:
    """Hex SHA-256 of the kind, keys and sentences (not of the file's formatting)."""
    canonical = json.dumps({"kind": self.kind, "items": list(zip(self.keys, self.sentences))},
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

  def flat(self) -> tuple[list[str], list[int]]:
    """All sentences in key order, and `offsets` `(K + 1,)`: key i has rows
    `offsets[i]:offsets[i + 1]`."""
    flat, offsets = [], [0]
    for sentences in self.sentences:
      flat.extend(sentences)
      offsets.append(len(flat))
    return flat, offsets


def _sentences(value, where: str) -> tuple[str, ...]:
  if isinstance(value, str):
    value = [value]
  if not isinstance(value, (list, tuple)) or not value:
    raise DescriptionsError(f"{where}: want a non-empty list of sentences, got "
                            f"{type(value).__name__} {str(value)[:60]!r}")
  out = []
  for i, sentence in enumerate(value):
    if not isinstance(sentence, str) or not sentence.strip():
      raise DescriptionsError(f"{where}[{i}]: want a non-empty string, got {sentence!r}")
    out.append(sentence.strip())
  return tuple(out)


def class_descriptions(mapping: Mapping, source: str = "<mapping>",
                       dataset: Optional[str] = None) -> Descriptions:
  """Validates per-class sentences `{label or class name: [sentences]}`.

  Args:
    mapping: keys are 0-based labels (int or decimal string) or, with `dataset`, class
      names of that built-in table; values are sentence lists (or one sentence).
    source: named in error messages (the file path).
    dataset: optional built-in table (`ntu60`, `ntu120`, `pku_mmd`) bounding the labels
      and resolving names.

  Returns:
    `Descriptions` of kind "class", keys ordered by label.
  """
  names = classes.class_names(dataset) if dataset is not None else None
  by_label: dict[int, tuple[str, ...]] = {}
  if not isinstance(mapping, Mapping) or not mapping:
    raise DescriptionsError(f"{source}: 'classes' must be a non-empty object "
                            "{label: [sentences]}")
  for key, value in mapping.items():
    where = f"{source}: classes[{key!r}]"
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
      label = int(key)
    elif names is not None and key in names:
      label = names.index(key)
    else:
      fix = (f"or a class name of {dataset!r}" if names is not None else
             "(class names are allowed only with a \"dataset\" field)")
      raise DescriptionsError(f"{where}: key is not a 0-based label {fix}")
    if names is not None and label >= len(names):
      raise DescriptionsError(f"{where}: label {label} is out of range for {dataset!r} "
                              f"({len(names)} classes, labels 0..{len(names) - 1})")
    if label in by_label:
      raise DescriptionsError(f"{where}: label {label} is given twice (as a number and as "
                              "a name?)")
    by_label[label] = _sentences(value, where)
  labels = sorted(by_label)
  return Descriptions(CLASS, tuple(str(label) for label in labels),
                      tuple(by_label[label] for label in labels), source)


def sample_descriptions(mapping: Mapping, source: str = "<mapping>") -> Descriptions:
  """Validates per-sample sentences `{sample_name: [sentences]}` (the C2VL format)."""
  if not isinstance(mapping, Mapping) or not mapping:
    raise DescriptionsError(f"{source}: want a non-empty object {{sample_name: [sentences]}}")
  keys, sentences = [], []
  for name, value in mapping.items():
    if isinstance(value, Mapping):
      raise DescriptionsError(
          f"{source}: [{name!r}] is an object, not a list of sentences; a per-class file "
          "puts its classes under a top-level \"classes\" field")
    keys.append(str(name))
    sentences.append(_sentences(value, f"{source}: [{name!r}]"))
  return Descriptions(SAMPLE, tuple(keys), tuple(sentences), source)


def load_descriptions(path: str) -> Descriptions:
  """Reads a per-class (`{"classes": ...}`) or per-sample (C2VL) descriptions JSON file."""
  if os.path.isdir(path):
    raise IsADirectoryError(errno.EISDIR, "a directory, not a descriptions JSON file", path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: descriptions file not found")
  try:
    with open(path, encoding="utf-8") as f:
      content = json.load(f)
  except json.JSONDecodeError as e:
    raise DescriptionsError(f"{path}: not valid JSON ({e})") from None
  except UnicodeDecodeError as e:
    raise DescriptionsError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); a "
                            "descriptions file is JSON") from None
  if not isinstance(content, dict):
    raise DescriptionsError(f"{path}: the top level must be a JSON object, got "
                            f"{type(content).__name__}")
  if "classes" in content and isinstance(content["classes"], dict):
    unknown = sorted(set(content) - _CLASS_FILE_FIELDS)
    if unknown:
      raise DescriptionsError(f"{path}: unknown top-level field(s) {unknown} in a per-class "
                              f"file; allowed: {sorted(_CLASS_FILE_FIELDS)}")
    dataset = content.get("dataset")
    if dataset is not None and dataset not in classes.CLASS_TABLES:
      raise DescriptionsError(f"{path}: \"dataset\" is {dataset!r}; choose one of "
                              f"{sorted(classes.CLASS_TABLES)} or leave it out")
    return class_descriptions(content["classes"], path, dataset)
  return sample_descriptions(content, path)


def write_class_descriptions(descriptions: Descriptions, path: str,
                             dataset: Optional[str] = None) -> None:
  """Writes per-class descriptions in the file format above (a starting point to edit)."""
  if descriptions.kind != CLASS:
    raise DescriptionsError(f"{descriptions.source}: only per-class descriptions are written "
                            "in the \"classes\" format")
  content = {"classes": dict(zip(descriptions.keys, map(list, descriptions.sentences)))}
  if dataset is not None:
    content = {"dataset": dataset, **content}
  with open(path, "w", encoding="utf-8") as f:
    json.dump(content, f, ensure_ascii=False, indent=1)


def prompt_descriptions(dataset: str,
                        templates: Sequence[str] = classes.PROMPT_TEMPLATES) -> Descriptions:
  """The class names of a built-in dataset under the prompt templates, one per sentence."""
  names = classes.class_names(dataset)
  return class_descriptions({i: classes.prompts(name, templates) for i, name in enumerate(names)},
                            source=f"prompts({dataset})", dataset=dataset)


# Body-part sentences for the synthetic dataset's classes (written for freqjax; the first
# sentence of each class is the plain prompt). Keyed by class name so that the order
# comes from `classes.SYNTHETIC_CLASS_NAMES`.
SYNTHETIC_SENTENCES: dict[str, tuple[str, ...]] = {
    "drink water": (
        "a person drink water.",
        "one hand lifts a cup from the waist up to the mouth and the head tilts back.",
        "the elbow bends sharply and the wrist stays near the face for a moment.",
        "the torso and legs stay still while one arm raises and lowers.",
    ),
    "eat meal": (
        "a person eat meal.",
        "one hand moves repeatedly between the table and the mouth.",
        "the elbow bends and straightens again and again while the head leans slightly forward.",
        "the body stays seated or standing still while the hands carry food.",
    ),
    "brush teeth": (
        "a person brush teeth.",
        "one hand holds near the mouth and moves quickly from side to side.",
        "the elbow is raised and bent while the wrist makes small fast strokes.",
        "the head stays still and the other arm hangs down.",
    ),
    "hand waving": (
        "a person hand waving.",
        "one arm is raised above the shoulder and the hand swings left and right.",
        "the forearm rocks side to side around the elbow while the body stays upright.",
        "the raised wrist oscillates several times, then the arm comes down.",
    ),
    "clapping": (
        "a person clapping.",
        "both hands meet in front of the chest again and again.",
        "the two forearms open and close symmetrically with the elbows bent.",
        "the palms strike together rhythmically while the legs stay still.",
    ),
    "kicking something": (
        "a person kicking something.",
        "one leg swings forward quickly from the hip and the knee straightens.",
        "the foot moves far in front of the body while the arms balance to the sides.",
        "the weight rests on the standing leg as the other foot strikes forward.",
    ),
    "jump up": (
        "a person jump up.",
        "both knees bend, then the whole body pushes up and leaves the ground.",
        "the arms swing upward as the feet rise and the body lands again.",
        "the hips, spine and head move up and down together.",
    ),
    "sit down": (
        "a person sit down.",
        "the knees and hips bend and the pelvis lowers onto a seat.",
        "the torso leans forward slightly while the body goes down.",
        "the head and shoulders drop and the thighs end horizontal.",
    ),
    "stand up": (
        "a person stand up.",
        "from a seat the knees and hips straighten and the body rises.",
        "the torso leans forward, then the legs push the pelvis upward.",
        "the head and shoulders rise until the body stands upright.",
    ),
    "bow": (
        "a person bow.",
        "the upper body bends forward at the hips and the head goes down.",
        "the spine tilts forward while the legs stay straight, then comes back up.",
        "the shoulders and head lower in front of the hips and rise again.",
    ),
    "punch": (
        "a person punch.",
        "one fist drives straight forward from the shoulder and the elbow extends.",
        "the arm shoots out quickly and pulls back while the torso twists.",
        "the hand moves fast in front of the chest at shoulder height.",
    ),
    "handshaking": (
        "two persons handshaking.",
        "two people face each other and join their right hands between them.",
        "the joined hands move up and down a few times at waist height.",
        "each person extends one arm forward while the other arm stays down.",
    ),
    "hugging": (
        "two persons hugging.",
        "two people step together and wrap their arms around each other's back.",
        "both bodies come close and the arms circle the other person's shoulders.",
        "the chests touch and the hands rest on the partner's back.",
    ),
    "pushing other person": (
        "a person pushing other person.",
        "one person extends both arms forward against the other's chest.",
        "the pushed person steps backward while the pusher leans forward.",
        "the hands of one body press on the torso of the other and move it away.",
    ),
}


def synthetic_descriptions(class_names: Optional[Sequence[str]] = None) -> Descriptions:
  """Per-class descriptions of the synthetic dataset, labels in its class order.

  Args:
    class_names: the synthetic dataset's class names in label order; by default
      `classes.SYNTHETIC_CLASS_NAMES`.
  """
  if class_names is None:
    class_names = classes.SYNTHETIC_CLASS_NAMES
  missing = [name for name in class_names if name not in SYNTHETIC_SENTENCES]
  if missing:
    raise DescriptionsError(f"synthetic classes {missing} have no sentences; add them to "
                            "SYNTHETIC_SENTENCES in freqjax/text/descriptions.py")
  return class_descriptions({i: SYNTHETIC_SENTENCES[name] for i, name in enumerate(class_names)},
                            source="synthetic descriptions")
