"""What ``curate check`` reports and ``curate convert`` counts: the kinds of findings in a data set.

A finding is something about a frame or file that a user should know before training on it.
*Errors* make a frame unusable: ``curate convert`` stops with one line (or, with
``--on-error skip``, records the frame as skipped); ``curate check`` lists them. *Notes* leave
the frame usable but say it is not what the format promises; *info* is what the format allows
but a user may want to know (Synscapes' fully occluded meta instances). Both commands count all
three, so no convert run hides what check would show; ``curate check`` exits 1 on errors and
notes. The meanings below are printed by ``curate check`` and listed in the
README ("curate check").
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR, NOTE, INFO = "error", "note", "info"


@dataclass(frozen=True)
class Kind:
    severity: str
    meaning: str


KINDS: dict[str, Kind] = {
    # --- errors: the frame (or file) cannot be converted as it is
    "stray_file": Kind(ERROR, "a file in a frame folder whose name is no frame of the format (e.g. 01.json beside "
                              "1.json, non-ASCII digits, a leading zero, a foreign file)"),
    "missing_file": Kind(ERROR, "a frame lacks one of the files it is made of (e.g. PNGs without meta/N.json)"),
    "duplicate_frame_key": Kind(ERROR, "two files name the same frame (the same Cityscapes stem in two city folders)"),
    "city_mismatch": Kind(ERROR, "a Cityscapes frame whose city prefix differs from its city folder"),
    "unreadable_file": Kind(ERROR, "a PNG, JPEG or JSON file that is empty, corrupt or not of its format"),
    "bit_depth": Kind(ERROR, "a label map of the wrong type (channels or bits per pixel)"),
    "size_mismatch": Kind(ERROR, "files of one frame disagree in size (label maps, or the image and its labels)"),
    "unknown_label_id": Kind(ERROR, "a label map value that is no Cityscapes label id (or no category of the format)"),
    "id_not_in_meta": Kind(ERROR, "a Synscapes instance id of the map that has no entry in meta/N.json"),
    "bad_meta_value": Kind(ERROR, "a meta value that is missing, of the wrong type, NaN/Infinity or out of range"),
    "too_many_instances": Kind(ERROR, "more instances in one frame than its ids can encode"),
    # --- notes: the frame converts, but is not what the format promises
    "meta_instance_without_pixels": Kind(INFO, "a meta instance with no visible pixel (fully occluded or out of "
                                               "view; the invisible rule drops it)"),
    "class_disagreement": Kind(NOTE, "an instance's pixels carry a class other than its meta class (a two-wheeler's "
                                     "rider pixels excepted); counted per (meta class, pixel class)"),
    "two_wheeler_meta_rider_or_person": Kind(NOTE, "an instance whose meta class is rider or person but whose pixels "
                                                   "are bicycle/motorcycle: the rider split does not apply to it"),
    "person_with_rider_pixels": Kind(NOTE, "a person instance holding rider pixels"),
    "mixed_class_instance": Kind(NOTE, "an instance whose pixels span several classes (beyond a two-wheeler and its "
                                       "rider)"),
    "empty_frame": Kind(NOTE, "a frame without a single instance or crowd region of the 8 classes"),
    "instance_ids_8bit": Kind(NOTE, "an 8-bit instanceIds PNG (real ones are 16-bit; a labelIds copy turns every "
                                    "instance into a group region)"),
    "attribute_conflict": Kind(NOTE, "a BDD100K instance whose pixels disagree on the attribute bits (their OR is kept)"),
    "category_conflict": Kind(NOTE, "a BDD100K instance id that carries several categories (one annotation each)"),
    "duplicate_frames": Kind(NOTE, "frames whose label files are byte-identical to another frame's"),
}

#: Examples kept per kind (the counts are exact).
EXAMPLES = 5


def finding(kind: str, instance: int | None = None, detail: str | None = None, file: str | None = None) -> dict:
    """One finding of a frame (the frame and, by default, its file are added by whoever collects it)."""
    if kind not in KINDS:
        raise KeyError(kind)
    entry: dict = {"kind": kind}
    if file is not None:
        entry["file"] = file
    if instance is not None:
        entry["instance"] = instance
    if detail is not None:
        entry["detail"] = detail
    return entry


def add_findings(total: dict, frame, file, findings: list[dict], examples: int = EXAMPLES) -> dict:
    """Count ``findings`` of one frame into ``total`` ({kind: {"count", "examples"}}), in place."""
    for f in findings:
        slot = total.setdefault(f["kind"], {"count": 0, "examples": []})
        slot["count"] += 1
        if len(slot["examples"]) < examples:
            example = {"frame": frame}
            where = f.get("file", file)
            if where is not None:
                example["file"] = str(where)
            example.update((k, v) for k, v in f.items() if k not in ("kind", "file"))
            slot["examples"].append(example)
    return total


def merge_findings(total: dict, other: dict, examples: int = EXAMPLES) -> dict:
    """Add a {kind: {"count", "examples"}} summary into ``total`` (examples in the order given)."""
    for kind, slot in other.items():
        mine = total.setdefault(kind, {"count": 0, "examples": []})
        mine["count"] += slot["count"]
        mine["examples"].extend(slot["examples"][: max(0, examples - len(mine["examples"]))])
    return total


def add_duplicate_frames(total: dict, digests, examples: int = EXAMPLES) -> dict:
    """Count frames whose label files equal an earlier frame's: ``digests`` are (frame, file, digest)
    in frame order."""
    first: dict = {}
    for frame, file, digest in digests:
        if digest in first:
            add_findings(total, frame, file, [finding("duplicate_frames", detail=f"same label files as frame "
                                                                                f"{first[digest]}")], examples)
        else:
            first[digest] = frame
    return total


def sorted_findings(total: dict) -> dict:
    """Errors first, then notes, then info, each in catalogue order."""
    order, rank = list(KINDS), {ERROR: 0, NOTE: 1, INFO: 2}
    return {k: total[k] for k in sorted(total, key=lambda k: (rank[KINDS[k].severity], order.index(k)))}
