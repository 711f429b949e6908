"""Pictures of instances: class-coloured fills and outlines on the RGB frame, titles and a legend.

Pure functions over arrays (RGB uint8 H×W×3 in, RGB out); callers read and write the files.

Instances are given as an id map (0 = none) plus a style per id: the class it is drawn as and
whether it is *filled* (a label) or only *outlined* in white (a label that was removed). Fills are
blended at full resolution and then the panel is downscaled (area interpolation keeps small
instances visible as a tint); outlines are drawn after downscaling on a nearest-neighbour copy of
the map, so they stay crisp at any figure size. Fill colours are the exact Cityscapes class
colours of :mod:`curate.labels`, so the legend and the panels agree.

Text uses matplotlib's bundled DejaVu Sans through Pillow (both are dependencies already), with
OpenCV's Hershey font as a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from curate.labels import ID_TO_LABEL

#: Share of the class colour in a filled pixel (the rest is the photo).
FILL_ALPHA = 0.6
#: Outline of an instance that is drawn without fill (e.g. removed by pruning).
GHOST_COLOUR = (255, 255, 255)
BLACK = (0, 0, 0)
#: Grey background when the RGB frame is missing.
NO_IMAGE_GREY = 96
#: Inside of the legend swatch of an outline-only instance (a typical grey photo tone).
SWATCH_GREY = 150
MARGIN = 12
GAP = 12


@dataclass(frozen=True)
class InstanceStyle:
    """How one id of a map is drawn: as ``label_id``'s colour, filled or outline only."""

    label_id: int
    filled: bool = True


@dataclass(frozen=True)
class Box:
    """A panel's image area inside a figure, in pixels."""

    x: int
    y: int
    width: int
    height: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y : self.y + self.height, self.x : self.x + self.width]


@dataclass(frozen=True)
class LegendEntry:
    name: str
    colour: tuple[int, int, int]
    filled: bool = True


@dataclass
class Figure:
    """A composed picture (RGB) and where each panel's image lies in it."""

    image: np.ndarray
    boxes: list[Box]


# --- colours -----------------------------------------------------------------------------------


def class_colour(label_id: int) -> np.ndarray:
    """The Cityscapes colour of a class (RGB uint8), exactly as in :mod:`curate.labels`."""
    return np.array(ID_TO_LABEL[label_id].color, dtype=np.uint8)


def outline_colour(label_id: int) -> np.ndarray:
    """The class colour brightened towards white: outlines stand out from their own fill."""
    base = class_colour(label_id).astype(np.float32)
    return np.round(base + (255 - base) * 0.45).astype(np.uint8)


def class_legend(label_ids: Sequence[int]) -> list[LegendEntry]:
    """Legend entries for classes, in label-table order, each once."""
    return [LegendEntry(ID_TO_LABEL[i].name, tuple(int(c) for c in class_colour(i))) for i in sorted(set(label_ids))]


# --- instance panels ---------------------------------------------------------------------------


def index_map(id_map: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per pixel: 1 + position of its id in the sorted ``ids``, or 0 when the id is not listed."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return np.zeros(id_map.shape, np.int32)
    pos = np.minimum(np.searchsorted(ids, id_map), len(ids) - 1)
    listed = ids[pos] == id_map
    return np.where(listed, pos + 1, 0).astype(np.int32)


def boundaries(index: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Pixels of an instance within ``thickness`` pixels of another value (an inner outline)."""
    kernel = np.ones((2 * thickness + 1, 2 * thickness + 1), np.uint8)
    values = index.astype(np.float32)  # exact for any realistic instance count (< 2**24)
    changed = cv2.dilate(values, kernel, borderType=cv2.BORDER_REPLICATE) != \
        cv2.erode(values, kernel, borderType=cv2.BORDER_REPLICATE)
    return changed & (index != 0)


def fit_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """(w, h) of a panel scaled down (never up) to at most ``max_width``, aspect kept."""
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def muted(rgb: np.ndarray) -> np.ndarray:
    """The photo in light grey, so that class colours stand out on it (and no photo colour is
    mistaken for a class colour)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.repeat(np.round(60 + grey * 0.7).astype(np.uint8)[..., None], 3, axis=2)


def render_panel(rgb: np.ndarray, id_map: np.ndarray, styles: Mapping[int, InstanceStyle],
                 size: tuple[int, int] | None = None, alpha: float = FILL_ALPHA,
                 thickness: int | None = None, grey: bool = True) -> np.ndarray:
    """The frame with every styled id of ``id_map`` filled and/or outlined, resized to ``size`` (w, h).

    Ids of the map without a style are not drawn. ``thickness`` of outlines defaults to 1 px for
    panels under 800 px wide, else 2 px. ``grey``: draw on the photo in grey (:func:`muted`).
    """
    height, width = id_map.shape
    if rgb.shape[:2] != (height, width):
        raise ValueError(f"image {rgb.shape[1]}x{rgb.shape[0]} and id map {width}x{height} differ")
    size = size or (width, height)
    if grey:
        rgb = muted(rgb)
    ids = np.array(sorted(styles), dtype=np.int64)
    ids = ids[ids != 0]
    index = index_map(id_map, ids)
    fills = np.zeros((len(ids) + 1, 3), np.float32)
    weights = np.zeros(len(ids) + 1, np.float32)
    edges = np.zeros((len(ids) + 1, 3), np.uint8)
    for n, iid in enumerate(ids.tolist(), 1):
        style = styles[iid]
        fills[n] = class_colour(style.label_id)
        weights[n] = alpha if style.filled else 0.0
        edges[n] = outline_colour(style.label_id) if style.filled else GHOST_COLOUR
    weight = weights[index][..., None]
    panel = rgb.astype(np.float32) * (1 - weight) + fills[index] * weight
    panel = np.clip(np.round(panel), 0, 255).astype(np.uint8)
    if size != (width, height):
        panel = cv2.resize(panel, size, interpolation=cv2.INTER_AREA)
        index = cv2.resize(index, size, interpolation=cv2.INTER_NEAREST)
    if thickness is None:
        thickness = 1 if size[0] < 800 else 2
    edge = boundaries(index, thickness)
    panel[edge] = edges[index[edge]]
    return panel


def zoom(image: np.ndarray, id_map: np.ndarray, box: Sequence[float], height: int,
         pad: float = 0.15, min_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``box`` (x, y, w, h; padded by ``pad`` of its size, and to at least ``min_side``
    pixels, default 1/6 of the frame's height, so a tiny object is not blown up to a blur) from
    an image and its id map and scale both to ``height`` pixels (nearest for the map, so outlines
    stay sharp when drawn)."""
    x, y, w, h = box
    min_side = id_map.shape[0] // 6 if min_side is None else min_side
    px, py = max(3.0, w * pad, (min_side - w) / 2), max(3.0, h * pad, (min_side - h) / 2)
    x0, y0 = max(0, int(np.floor(x - px))), max(0, int(np.floor(y - py)))
    x1 = min(id_map.shape[1], int(np.ceil(x + w + px)))
    y1 = min(id_map.shape[0], int(np.ceil(y + h + py)))
    crop_w = max(1, round((x1 - x0) * height / (y1 - y0)))
    image_crop = cv2.resize(image[y0:y1, x0:x1], (crop_w, height), interpolation=cv2.INTER_LINEAR)
    map_crop = cv2.resize(id_map[y0:y1, x0:x1].astype(np.int32), (crop_w, height), interpolation=cv2.INTER_NEAREST)
    return image_crop, map_crop


def row_of(images: Sequence[np.ndarray], width: int, gap: int = 8) -> np.ndarray:
    """Equal-height images left to right on white, as many as fit ``width``."""
    height = max(im.shape[0] for im in images)
    strip = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for im in images:
        if x + im.shape[1] > width:
            break
        strip[: im.shape[0], x : x + im.shape[1]] = im
        x += im.shape[1] + gap
    return strip


# --- text --------------------------------------------------------------------------------------


@cache
def _font(size: int, bold: bool):
    """DejaVu Sans at ``size`` px from matplotlib's data folder, or None (use OpenCV's font)."""
    try:
        import matplotlib
        from PIL import ImageFont

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return None


def text_width(text: str, size: int, bold: bool = False) -> int:
    font = _font(size, bold)
    if font is not None:
        return int(np.ceil(font.getlength(text)))
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size / 30, 2 if bold else 1)
    return w


def fit_text(text: str, width: int, size: int, bold: bool = False, min_size: int = 11) -> tuple[str, int]:
    """Shrink the font until ``text`` fits ``width``; below ``min_size`` cut the text with "…"."""
    while size > min_size and text_width(text, size, bold) > width:
        size -= 1
    while len(text) > 1 and text_width(text, size, bold) > width:
        text = text[:-2] + "…"
    return text, size


def draw_text(image: np.ndarray, text: str, x: int, y: int, size: int, bold: bool = False,
              colour: tuple[int, int, int] = BLACK) -> np.ndarray:
    """``text`` with its top-left corner at (x, y), drawn into ``image`` (returned)."""
    font = _font(size, bold)
    if font is None:
        cv2.putText(image, text.replace("…", "..."), (x, y + size), cv2.FONT_HERSHEY_SIMPLEX, size / 30,
                    colour, 2 if bold else 1, cv2.LINE_AA)
        return image
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    ImageDraw.Draw(canvas).text((x, y), text, font=font, fill=colour)
    image[...] = np.asarray(canvas)
    return image


def text_strip(text: str, width: int, size: int, bold: bool = False) -> np.ndarray:
    """A white strip ``width`` wide holding one line of text (shrunk or cut to fit)."""
    text, size_used = fit_text(text, width, size, bold)
    strip = np.full((round(size * 1.45), width, 3), 255, np.uint8)
    return draw_text(strip, text, 0, round((strip.shape[0] - size_used * 1.15) / 2), size_used, bold)


def legend(entries: Sequence[LegendEntry], width: int, size: int) -> np.ndarray:
    """Swatches with names, wrapped into as many rows as ``width`` needs."""
    swatch = size
    row_height = round(size * 1.6)
    spacing = size
    rows: list[list[tuple[int, LegendEntry]]] = [[]]
    x = 0
    for entry in entries:
        w = swatch + size // 3 + text_width(entry.name, size)
        if rows[-1] and x + w > width:
            rows.append([])
            x = 0
        rows[-1].append((x, entry))
        x += w + spacing
    strip = np.full((row_height * len(rows), width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        top = r * row_height + (row_height - swatch) // 2
        for x, entry in row:
            box = (slice(top, top + swatch), slice(x, x + swatch))
            if entry.filled:
                strip[box] = entry.colour
            else:  # an outline-only instance: its outline on a photo-grey square with a dark rim
                strip[box] = NO_IMAGE_GREY
                ring = (slice(top + 1, top + swatch - 1), slice(x + 1, x + swatch - 1))
                inner = (slice(top + 3, top + swatch - 3), slice(x + 3, x + swatch - 3))
                strip[ring] = entry.colour
                strip[inner] = SWATCH_GREY
            draw_text(strip, entry.name, x + swatch + size // 3, top + (swatch - round(size * 1.15)) // 2, size)
    return strip


# --- composition -------------------------------------------------------------------------------


def font_size_for(panel_width: int) -> int:
    """Title font size for a panel width: about 1/40 of it, between 13 and 26 px."""
    return int(min(26, max(13, round(panel_width / 40))))


def compose(panels: Sequence[np.ndarray], titles: Sequence[str], columns: int, heading: str | None = None,
            legend_entries: Sequence[LegendEntry] = (), footers: Sequence[np.ndarray] | None = None,
            footer_titles: Sequence[str] | None = None) -> Figure:
    """Panels of equal size in a grid, each under its title, a heading on top and a legend below.

    ``footers``: optional strips (panel width) drawn under each panel, each under its
    ``footer_titles`` entry (e.g. enlarged details).
    """
    if len(panels) != len(titles) or not panels:
        raise ValueError("one title per panel, at least one panel")
    if footers is not None and len(footers) != len(panels):
        raise ValueError("one footer per panel")
    h, w = panels[0].shape[:2]
    columns = max(1, min(columns, len(panels)))
    size = font_size_for(w)
    small = max(12, size - 3)
    width = 2 * MARGIN + columns * w + (columns - 1) * GAP
    placed: list[tuple[int, int, np.ndarray]] = []  # (y, x, pixels)
    boxes: list[Box] = []
    top = MARGIN
    if heading:
        strip = text_strip(heading, width - 2 * MARGIN, size + 2, bold=True)
        placed.append((top, MARGIN, strip))
        top += strip.shape[0] + GAP // 2
    for row_start in range(0, len(panels), columns):
        row = range(row_start, min(row_start + columns, len(panels)))
        bottom = top
        for c, i in enumerate(row):
            x = MARGIN + c * (w + GAP)
            strip = text_strip(titles[i], w, size)
            y = top + strip.shape[0] + 4
            placed += [(top, x, strip), (y, x, panels[i])]
            boxes.append(Box(x, y, w, h))
            y += h + GAP
            if footers is not None:
                if footer_titles is not None:
                    strip = text_strip(footer_titles[i], w, small)
                    placed.append((y, x, strip))
                    y += strip.shape[0] + 2
                placed.append((y, x, footers[i]))
                y += footers[i].shape[0] + GAP
            bottom = max(bottom, y)
        top = bottom
    if legend_entries:
        strip = legend(legend_entries, width - 2 * MARGIN, small)
        placed.append((top, MARGIN, strip))
        top += strip.shape[0] + GAP
    canvas = np.full((top + MARGIN - GAP, width, 3), 255, np.uint8)
    for y, x, pixels in placed:
        canvas[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
    return Figure(canvas, boxes)


def panel_width_for(frame_width: int, columns: int, max_width: int) -> int:
    """Widest panel (≤ the frame's width) so that ``columns`` of them fit a figure ``max_width`` wide."""
    room = (max_width - 2 * MARGIN - (columns - 1) * GAP) // columns
    return max(16, min(frame_width, room))
