"""What a generated sample set holds, measured on the painted maps (after occlusion and clipping).

Tests of readers and converters compare their results against this record, so every count here is
taken from the written label maps, never from the generation plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curate import sources


@dataclass
class FrameTruth:
    """One frame.

    - ``riders``: Synscapes: ``(two-wheeler instance id, visible rider pixels)`` for every
      bicycle/motorcycle instance with at least one visible pixel labelled rider — exactly the rider
      instances the rider split must create. Cityscapes: ``(rider instance id, visible pixels)``.
    - ``unridden``: visible bicycle/motorcycle instance ids with no visible rider pixel (Synscapes:
      none of the instance's pixels is rider; Cityscapes: the two-wheeler was drawn without a rider).
    - ``visible``: class name → sorted ids of instances with ≥ 1 visible pixel (Synscapes: the meta
      class, so a ridden bicycle is listed under "bicycle").
    - ``invisible``: ids that exist (Synscapes meta / Cityscapes polygons) but show no pixel.
    - ``groups``: Cityscapes crowd regions drawn, ``(polygon label, visible pixels)`` in file order.
    - ``pixels``: instance id → visible pixel count (Synscapes: rider and vehicle pixels together).
    """

    riders: list[tuple[int, int]] = field(default_factory=list)
    unridden: list[int] = field(default_factory=list)
    visible: dict[str, list[int]] = field(default_factory=dict)
    invisible: list[int] = field(default_factory=list)
    groups: list[tuple[str, int]] = field(default_factory=list)
    pixels: dict[int, int] = field(default_factory=dict)

    def normalised(self) -> FrameTruth:
        """Sort every list and map, so the record does not depend on drawing order."""
        self.visible = {name: sorted(ids) for name, ids in sorted(self.visible.items())}
        self.invisible.sort()
        self.riders.sort()
        self.unridden.sort()
        self.pixels = dict(sorted(self.pixels.items()))
        return self

    def to_dict(self) -> dict:
        return {
            "riders": [[int(i), int(n)] for i, n in self.riders],
            "unridden": [int(i) for i in self.unridden],
            "visible": {name: [int(i) for i in ids] for name, ids in self.visible.items()},
            "invisible": [int(i) for i in self.invisible],
            "groups": [[label, int(n)] for label, n in self.groups],
            "pixels": {str(i): int(n) for i, n in self.pixels.items()},
        }


@dataclass
class SampleTruth:
    """A generated set: ``frames`` maps the frame key (Synscapes: int N; Cityscapes:
    ``"city_seq_frame"``) to its :class:`FrameTruth`."""

    layout: str  # the name of the source whose layout was written
    root: str
    seed: int
    size: tuple[int, int]  # (width, height)
    split: str | None = None  # Cityscapes split; None for Synscapes (frame numbers carry the split)
    frames: dict[int | str, FrameTruth] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        frames = self.frames.values()
        return {
            "frames": len(self.frames),
            "visible_instances": sum(len(ids) for f in frames for ids in f.visible.values()),
            "invisible_instances": sum(len(f.invisible) for f in frames),
            "riders": sum(len(f.riders) for f in frames),
            "unridden": sum(len(f.unridden) for f in frames),
            "groups": sum(len(f.groups) for f in frames),
        }

    def summary(self) -> str:
        c = self.counts()
        where = f"{self.layout}" + (f" {self.split}" if self.split else "")
        groups = f", {c['groups']} groups" if sources.get(self.layout).kind == "real" else ""
        return (
            f"{where}: {c['frames']} frames of {self.size[0]}x{self.size[1]} in {self.root}: "
            f"{c['visible_instances']} visible instances, {c['invisible_instances']} fully hidden, "
            f"{c['riders']} riders, {c['unridden']} unridden two-wheelers{groups}"
        )

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "root": self.root,
            "seed": self.seed,
            "size": list(self.size),
            "split": self.split,
            "frames": {str(key): truth.to_dict() for key, truth in self.frames.items()},
        }
