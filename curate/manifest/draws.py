"""Seeded, nested draws of frames from a source split.

Each frame of a source split gets the key ``blake2b("{seed}/{source}/{frame}")``; frames sorted by
that key form a fixed permutation, and a draw of k frames is its first k. So the same OUT, seed and
count give the same frames on any machine or numpy version, and growing k keeps every earlier frame
(nested draws: a sweep compares like with like).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def draw_order(frames: Sequence, seed: int, source: str) -> list[int]:
    """Indices into ``frames`` in draw order (a seeded permutation that is stable per frame)."""
    def key(i: int) -> bytes:
        text = f"{seed}/{source}/{frames[i]}".encode()
        return hashlib.blake2b(text, digest_size=16).digest()

    return sorted(range(len(frames)), key=lambda i: (key(i), i))


def draw_frames(frames: Sequence, count: int, seed: int, source: str) -> list[int]:
    """Indices of the first ``count`` frames of the seeded order, returned ascending."""
    return sorted(draw_order(frames, seed, source)[:count])
