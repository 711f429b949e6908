"""The label table against cityscapesScripts' own, and the COCO category order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from curate import labels

REPO = Path(__file__).resolve().parents[1]


def test_matches_cityscapesscripts():
    cs = pytest.importorskip("cityscapesscripts.helpers.labels")
    ours = [tuple(label) for label in labels.LABELS]
    theirs = [
        (lb.name, lb.id, lb.trainId, lb.category, lb.categoryId, lb.hasInstances, lb.ignoreInEval, tuple(lb.color))
        for lb in cs.labels
    ]
    assert ours == theirs


def test_coco_categories_order_and_lookups():
    cats = labels.coco_categories()
    assert [c["name"] for c in cats] == ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    assert [c["id"] for c in cats] == list(range(1, 9))
    for cat in cats:
        assert labels.NAME_TO_LABEL[cat["name"]].id == cat["cityscapes_id"]
        assert labels.COCO_ID_BY_LABEL_ID[cat["cityscapes_id"]] == cat["id"]
        assert labels.LABEL_ID_BY_COCO_ID[cat["id"]] == cat["cityscapes_id"]
    assert {label.name for label in labels.IGNORED_INSTANCE_CLASSES} == {"caravan", "trailer"}
    assert labels.label_of_polygon("cargroup") == (labels.NAME_TO_LABEL["car"], True)
    assert labels.label_of_polygon("polegroup") == (labels.NAME_TO_LABEL["polegroup"], False)
    with pytest.raises(KeyError):
        labels.label_of_polygon("spaceship")


def _class_id_uses(path: Path, suspicious: set[int]) -> set[int]:
    """Int literals that look like class ids where class ids are used: comparisons, dict keys, sets."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            candidates = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            candidates = [k for k in node.keys if k is not None]
        elif isinstance(node, (ast.Set, ast.Tuple, ast.List)) and isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
            candidates = list(node.elts) if isinstance(node, ast.Set) else []
        else:
            continue
        for c in candidates:
            elts = c.elts if isinstance(c, (ast.Tuple, ast.List, ast.Set)) else [c]
            found |= {e.value for e in elts if isinstance(e, ast.Constant) and type(e.value) is int and e.value in suspicious}
    return found


def test_no_class_id_literals_outside_label_table():
    """Instance class ids and their Cityscapes encodings (label*1000+k) appear in labels.py only."""
    instance_ids = {label.id for label in labels.LABELS if label.hasInstances}
    suspicious = instance_ids | {i * labels.INSTANCE_ID_OFFSET for i in instance_ids}
    offenders = []
    for path in sorted((REPO / "curate").rglob("*.py")) + sorted((REPO / "train").rglob("*.py")):
        if path.name == "labels.py":
            continue
        found = _class_id_uses(path, suspicious)
        if found:
            offenders.append(f"{path.relative_to(REPO)}: {sorted(found)}")
    assert not offenders, offenders
