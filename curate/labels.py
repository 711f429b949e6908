"""The one Cityscapes label table of synmix (a copy of cityscapesScripts' ``helpers/labels.py``).

Every class id used anywhere in synmix comes from here: code names classes (``LABEL_ID["rider"]``),
never writes their numbers.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple


class Label(NamedTuple):
    name: str
    id: int
    trainId: int
    category: str
    categoryId: int
    hasInstances: bool
    ignoreInEval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    #      name                    id  trainId  category        catId  hasInst ignore  color
    Label("unlabeled",              0,   255,  "void",            0,  False,  True,  (0, 0, 0)),
    Label("ego vehicle",            1,   255,  "void",            0,  False,  True,  (0, 0, 0)),
    Label("rectification border",   2,   255,  "void",            0,  False,  True,  (0, 0, 0)),
    Label("out of roi",             3,   255,  "void",            0,  False,  True,  (0, 0, 0)),
    Label("static",                 4,   255,  "void",            0,  False,  True,  (0, 0, 0)),
    Label("dynamic",                5,   255,  "void",            0,  False,  True,  (111, 74, 0)),
    Label("ground",                 6,   255,  "void",            0,  False,  True,  (81, 0, 81)),
    Label("road",                   7,     0,  "flat",            1,  False,  False, (128, 64, 128)),
    Label("sidewalk",               8,     1,  "flat",            1,  False,  False, (244, 35, 232)),
    Label("parking",                9,   255,  "flat",            1,  False,  True,  (250, 170, 160)),
    Label("rail track",            10,   255,  "flat",            1,  False,  True,  (230, 150, 140)),
    Label("building",              11,     2,  "construction",    2,  False,  False, (70, 70, 70)),
    Label("wall",                  12,     3,  "construction",    2,  False,  False, (102, 102, 156)),
    Label("fence",                 13,     4,  "construction",    2,  False,  False, (190, 153, 153)),
    Label("guard rail",            14,   255,  "construction",    2,  False,  True,  (180, 165, 180)),
    Label("bridge",                15,   255,  "construction",    2,  False,  True,  (150, 100, 100)),
    Label("tunnel",                16,   255,  "construction",    2,  False,  True,  (150, 120, 90)),
    Label("pole",                  17,     5,  "object",          3,  False,  False, (153, 153, 153)),
    Label("polegroup",             18,   255,  "object",          3,  False,  True,  (153, 153, 153)),
    Label("traffic light",         19,     6,  "object",          3,  False,  False, (250, 170, 30)),
    Label("traffic sign",          20,     7,  "object",          3,  False,  False, (220, 220, 0)),
    Label("vegetation",            21,     8,  "nature",          4,  False,  False, (107, 142, 35)),
    Label("terrain",               22,     9,  "nature",          4,  False,  False, (152, 251, 152)),
    Label("sky",                   23,    10,  "sky",             5,  False,  False, (70, 130, 180)),
    Label("person",                24,    11,  "human",           6,  True,   False, (220, 20, 60)),
    Label("rider",                 25,    12,  "human",           6,  True,   False, (255, 0, 0)),
    Label("car",                   26,    13,  "vehicle",         7,  True,   False, (0, 0, 142)),
    Label("truck",                 27,    14,  "vehicle",         7,  True,   False, (0, 0, 70)),
    Label("bus",                   28,    15,  "vehicle",         7,  True,   False, (0, 60, 100)),
    Label("caravan",               29,   255,  "vehicle",         7,  True,   True,  (0, 0, 90)),
    Label("trailer",               30,   255,  "vehicle",         7,  True,   True,  (0, 0, 110)),
    Label("train",                 31,    16,  "vehicle",         7,  True,   False, (0, 80, 100)),
    Label("motorcycle",            32,    17,  "vehicle",         7,  True,   False, (0, 0, 230)),
    Label("bicycle",               33,    18,  "vehicle",         7,  True,   False, (119, 11, 32)),
    Label("license plate",         -1,    -1,  "vehicle",         7,  False,  True,  (0, 0, 142)),
)
# fmt: on

NAME_TO_LABEL: dict[str, Label] = {label.name: label for label in LABELS}
ID_TO_LABEL: dict[int, Label] = {label.id: label for label in LABELS}
LABEL_ID: dict[str, int] = {label.name: label.id for label in LABELS}
#: Label ids 0..33 a label map may hold (license plate −1 is never drawn into a map).
VALID_LABEL_IDS: frozenset[int] = frozenset(label.id for label in LABELS if label.id >= 0)

#: Cityscapes instanceIds encoding: ``label_id * INSTANCE_ID_OFFSET + k``; values below it are
#: plain label ids (stuff, and the pixels of group regions such as ``cargroup``).
INSTANCE_ID_OFFSET = 1000
#: Smallest label id that can carry instances; Detectron2's loader takes every map value ≥ this.
FIRST_INSTANCE_LABEL_ID = min(label.id for label in LABELS if label.hasInstances)
#: Suffix of Cityscapes polygon labels for crowd regions ("cargroup", "persongroup", ...).
GROUP_SUFFIX = "group"

#: The 8 evaluated instance classes (hasInstances and not ignoreInEval) in COCO category order:
#: person, rider, car, truck, bus, train, motorcycle, bicycle → COCO ids 1..8.
INSTANCE_CLASSES: tuple[Label, ...] = tuple(
    label for label in LABELS if label.hasInstances and not label.ignoreInEval
)
#: Instance classes Cityscapes ignores in evaluation (caravan, trailer).
IGNORED_INSTANCE_CLASSES: tuple[Label, ...] = tuple(
    label for label in LABELS if label.hasInstances and label.ignoreInEval
)
CLASS_NAMES: tuple[str, ...] = tuple(label.name for label in INSTANCE_CLASSES)
COCO_ID_BY_LABEL_ID: dict[int, int] = {label.id: i + 1 for i, label in enumerate(INSTANCE_CLASSES)}
LABEL_ID_BY_COCO_ID: dict[int, int] = {coco: lid for lid, coco in COCO_ID_BY_LABEL_ID.items()}


@cache
def train_id_lut():
    """trainId of every label id 0..255 as a numpy lookup table (255, "ignore", for ids without one)."""
    import numpy as np  # here, not at import: the CLI's --help reads this module without numpy

    lut = np.full(256, 255, dtype=np.uint8)
    for label in LABELS:
        if 0 <= label.id and 0 <= label.trainId < 255:
            lut[label.id] = label.trainId
    return lut


def coco_categories() -> list[dict]:
    """COCO ``categories`` list: ids 1..8, each carrying its Cityscapes label id."""
    return [
        {
            "id": COCO_ID_BY_LABEL_ID[label.id],
            "name": label.name,
            "supercategory": label.category,
            "cityscapes_id": label.id,
        }
        for label in INSTANCE_CLASSES
    ]


def label_of_polygon(name: str) -> tuple[Label, bool]:
    """Label for a polygons.json object name and whether it is a group (``cargroup`` → car, True)."""
    is_group = name.endswith(GROUP_SUFFIX) and name not in NAME_TO_LABEL
    base = name[: -len(GROUP_SUFFIX)] if is_group else name
    if base not in NAME_TO_LABEL:
        raise KeyError(name)
    return NAME_TO_LABEL[base], is_group
