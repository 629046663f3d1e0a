"""From a vessel's centreline tree to the reduced model's network.

Each centreline branch becomes one network segment, or several when it holds more than one
stenosis (cut halfway between them), so every segment carries at most one Young–Tsai loss.
Poiseuille friction is integrated over the branch's measured radius profile with the narrowed
stretch replaced by its reference (healthy) radius: the stenosis's own loss term accounts for
the narrowing, and counting it in the friction too would count it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgtwin.core.flow.centerline import Stenosis as FoundStenosis
from surgtwin.core.flow.centerline import VesselTree
from surgtwin.core.flow.reduced import FlowNetwork, Segment
from surgtwin.core.flow.reduced import Stenosis as LossStenosis

MM = 1e-3
MIN_SEGMENT_POINTS = 2


@dataclass(frozen=True)
class NetworkPiece:
    """Where a network segment came from: its branch and the point range along it."""

    branch: int
    first: int
    last: int  # inclusive
    stenosis: FoundStenosis | None


def _nearest_index(points: np.ndarray, position: np.ndarray) -> int:
    return int(np.argmin(np.linalg.norm(points - position, axis=1)))


def _healthy_radius(
    radius: np.ndarray, arclength: np.ndarray, found: list[FoundStenosis], points: np.ndarray
) -> np.ndarray:
    healthy = radius.copy()
    for stenosis in found:
        centre = arclength[_nearest_index(points, stenosis.position_lps)]
        reach = max(stenosis.length_mm, 1e-9)
        inside = np.abs(arclength - centre) <= reach
        # the healthy radius in the same measure as ``radius`` (the inscribed sphere; the lesion
        # itself is graded by area): the lumen just beyond the lesion on either side
        beside = ~inside & (np.abs(arclength - centre) <= 3.0 * reach)
        reference = float(np.median(radius[beside])) if beside.any() else stenosis.reference_radius_mm
        healthy[inside] = np.maximum(healthy[inside], reference)
    return healthy


def build_network(
    tree: VesselTree,
    stenoses: list[FoundStenosis],
    inflow_m3_s: float,
    *,
    removed: frozenset[int] = frozenset(),
) -> tuple[FlowNetwork, list[NetworkPiece]]:
    """The reduced network of ``tree`` with the given stenoses (``removed``: indices into
    ``stenoses`` treated as stented — their loss left out)."""
    segments: list[Segment] = []
    pieces: list[NetworkPiece] = []
    index_of = {id(s): n for n, s in enumerate(stenoses)}  # by identity: they hold arrays
    last_segment_of_branch: dict[int, int] = {}
    order = _branches_parent_first(tree)
    for b in order:
        branch = tree.branches[b]
        points, radius = branch.points_lps, branch.radius_mm
        arclength = branch.arclength_mm()
        found = sorted(
            (s for s in stenoses if s.branch == b),
            key=lambda s: _nearest_index(points, s.position_lps),
        )
        healthy = _healthy_radius(radius, arclength, found, points)
        cuts = [0]
        at = [_nearest_index(points, s.position_lps) for s in found]
        for left, right in zip(at[:-1], at[1:], strict=True):
            cuts.append(max((left + right) // 2, cuts[-1] + 1))
        cuts.append(len(points) - 1)
        parent = last_segment_of_branch.get(branch.parent) if branch.parent is not None else None
        for n in range(len(cuts) - 1):
            first, last = cuts[n], max(cuts[n + 1], cuts[n] + MIN_SEGMENT_POINTS - 1)
            last = min(last, len(points) - 1)
            length_mm = float(arclength[last] - arclength[first])
            stenosis = found[n] if n < len(found) else None
            loss = None
            if stenosis is not None and index_of[id(stenosis)] not in removed:
                loss = LossStenosis(stenosis.area_reduction, max(stenosis.length_mm, 0.5) * MM)
            profile = tuple(float(r) * MM for r in healthy[first : last + 1])
            segments.append(
                Segment(
                    length_m=max(length_mm, 0.1) * MM,
                    radius_m=profile if len(profile) > 1 else profile[0],
                    parent=parent,
                    stenosis=loss,
                    name=f"branch {b}" + (f" part {n + 1}" if len(cuts) > 2 else ""),
                )
            )
            pieces.append(NetworkPiece(b, first, last, stenosis))
            parent = len(segments) - 1
        last_segment_of_branch[b] = len(segments) - 1
    return FlowNetwork(tuple(segments), inflow_m3_s), pieces


def _branches_parent_first(tree: VesselTree) -> list[int]:
    order: list[int] = []
    pending = [b for b, branch in enumerate(tree.branches) if branch.parent is None]
    while pending:
        b = pending.pop(0)
        order.append(b)
        pending.extend(tree.branches[b].children)
    return order
