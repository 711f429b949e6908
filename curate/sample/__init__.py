"""Procedural sample sets written in the exact on-disk layouts of Synscapes, Cityscapes and BDD100K.

Street scenes drawn with OpenCV (no anti-aliasing on label maps), deterministic per seed and frame,
with tiny far instances, large near ones, truncation at the border and full occlusion; returned with
a :class:`SampleTruth` record of what each frame really shows.
"""

from curate.sample.bdd100k import make_bdd100k_frame, write_bdd100k_frame, write_bdd100k_sample
from curate.sample.cityscapes import make_cityscapes_frame, write_cityscapes_frame, write_cityscapes_sample
from curate.sample.synscapes import (
    frame_numbers,
    make_synscapes_frame,
    write_synscapes_frame,
    write_synscapes_sample,
)
from curate.sample.truth import FrameTruth, SampleTruth
from curate.sample.writer import parse_size

__all__ = [
    "make_bdd100k_frame",
    "write_bdd100k_frame",
    "write_bdd100k_sample",
    "FrameTruth",
    "SampleTruth",
    "frame_numbers",
    "make_cityscapes_frame",
    "make_synscapes_frame",
    "parse_size",
    "write_cityscapes_frame",
    "write_cityscapes_sample",
    "write_synscapes_frame",
    "write_synscapes_sample",
]
