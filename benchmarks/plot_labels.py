"""Labels beside scatter points that overlap neither each other nor the points.

Each label, in the order given, goes to the first free place on rings of growing radius
around its point (eight directions per ring, up and to the right first), within the axes;
every label is joined to its point by a thin line (in a crowd, that line says which
point a label names) and has a light backing so that error bars do not run through it. The places are computed
from the labels' sizes as matplotlib's renderer measures them, so they hold in the saved
image as long as the figure's layout does not change after placing. A label that finds no
free place is left out (logged): with hundreds of points, the first ones keep theirs.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

FONT_SIZE = 8
# Distances from the point, in points (1/72 inch), tried in turn.
RINGS_PT = tuple(range(6, 240, 8))
# Directions, in the order tried: up-right (the usual place), right, down-right, up, down, ...
DIRECTIONS = ((1, 1), (1, 0), (1, -1), (0, 1), (0, -1), (-1, 1), (-1, 0), (-1, -1))
# Half the side of the square kept clear around every point, and the gap kept between
# labels, in points.
MARKER_PT = 5.0
GAP_PT = 2.0
_ALIGN = {1: ("left", "bottom"), 0: ("center", "center"), -1: ("right", "top")}


def _candidate(anchor: np.ndarray, size: tuple[float, float], offset: np.ndarray,
               direction: tuple[int, int]) -> np.ndarray:
    """The display box ``[x0, y0, x1, y1]`` of a label of ``size`` (pixels) set at
    ``anchor + offset``, aligned so that it extends in ``direction`` from there."""
    x, y = anchor + offset
    width, height = size
    x0 = x if direction[0] > 0 else x - width if direction[0] < 0 else x - width / 2
    y0 = y if direction[1] > 0 else y - height if direction[1] < 0 else y - height / 2
    return np.array([x0, y0, x0 + width, y0 + height])


def _is_free(box: np.ndarray, taken: np.ndarray, area: np.ndarray) -> bool:
    inside = box[0] >= area[0] and box[1] >= area[1] and box[2] <= area[2] and box[3] <= area[3]
    if not inside:
        return False
    if not len(taken):
        return True
    hits = ((box[0] < taken[:, 2]) & (box[2] > taken[:, 0])
            & (box[1] < taken[:, 3]) & (box[3] > taken[:, 1]))
    return not hits.any()


def _free_spot(anchor, size, taken, area, pixels_per_point):
    """The first free ``(radius in points, direction, box)``, or None."""
    for radius in RINGS_PT:
        for direction in DIRECTIONS:
            offset = radius * pixels_per_point * np.array(direction, dtype=float)
            box = _candidate(anchor, size, offset, direction)
            if _is_free(box, taken, area):
                return radius, direction, box
    return None


def place_labels(axes, points: list[tuple[str, float, float]]) -> list:
    """Label each ``(name, x, y)`` point (data coordinates of ``axes``); returns the
    annotations placed. Call it once the axes' limits and the figure's layout are final."""
    figure = axes.figure
    figure.canvas.draw()  # fixes the limits and gives a renderer that measures text
    renderer = figure.canvas.get_renderer()
    pixels_per_point = figure.dpi / 72.0
    area = np.array(axes.get_window_extent(renderer).extents)
    anchors = axes.transData.transform(np.array([(x, y) for _, x, y in points], dtype=float)
                                       .reshape(-1, 2))
    clear, gap = MARKER_PT * pixels_per_point, GAP_PT * pixels_per_point
    taken = np.array([[x - clear, y - clear, x + clear, y + clear] for x, y in anchors])
    taken = taken.reshape(-1, 4)
    placed = []
    for (name, x, y), anchor in zip(points, anchors):
        probe = axes.text(0, 0, name, fontsize=FONT_SIZE)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        spot = _free_spot(anchor, (extent.width, extent.height), taken, area, pixels_per_point)
        if spot is None:
            logger.info("no room for the label %r in the plot; left out", name)
            continue
        radius, direction, box = spot
        horizontal, _ = _ALIGN[direction[0]]
        _, vertical = _ALIGN[direction[1]]
        placed.append(axes.annotate(
            name, (x, y), xytext=(radius * direction[0], radius * direction[1]),
            textcoords="offset points", fontsize=FONT_SIZE, ha=horizontal, va=vertical,
            arrowprops=dict(arrowstyle="-", color="0.4", linewidth=0.6, shrinkA=0, shrinkB=4),
            bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none", alpha=0.8),
            zorder=4))
        taken = np.vstack([taken, box + gap * np.array([-1, -1, 1, 1])])
    return placed
