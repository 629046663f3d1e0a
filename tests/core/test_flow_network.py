"""Centreline tree → reduced network: one Young–Tsai loss per segment, friction on the healthy
radius (the narrowing is not counted twice), lengths kept, stents leave the loss out."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.flow.centerline import Branch, Stenosis, VesselTree
from surgtwin.core.flow.network import build_network
from surgtwin.core.flow.reduced import solve_steady


def _tube_with_two_waists() -> tuple[VesselTree, list[Stenosis]]:
    x = np.linspace(0.0, 120.0, 241)
    radius = np.full_like(x, 4.0)
    for centre in (40.0, 80.0):
        radius -= 2.0 * np.exp(-(((x - centre) / 3.0) ** 2))
    points = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1)
    tree = VesselTree([Branch(points, radius, None)], points[0], points[-1:], [0], np.zeros((0, 3)), 0.5)
    stenoses = [Stenosis(0, np.array([c, 0.0, 0.0]), 0.75, 2.0, 4.0, 5.0) for c in (40.0, 80.0)]
    return tree, stenoses


def test_each_stenosis_gets_its_own_segment_on_the_healthy_radius() -> None:
    tree, stenoses = _tube_with_two_waists()
    network, pieces = build_network(tree, stenoses, 5e-6)
    assert len(network.segments) == 2 and network.segments[1].parent == 0
    assert all(p.stenosis is s for p, s in zip(pieces, stenoses, strict=True))
    assert all(s.stenosis is not None and s.stenosis.area_reduction == 0.75 for s in network.segments)
    assert sum(s.length_m for s in network.segments) == pytest.approx(0.120, rel=1e-6)
    for segment in network.segments:
        assert min(segment.radius_m) > 0.95 * 4e-3  # the 2 mm waist is replaced (only its tails stay)


def test_a_stented_stenosis_loses_its_loss_term_only() -> None:
    tree, stenoses = _tube_with_two_waists()
    both, _ = build_network(tree, stenoses, 5e-6)
    one, _ = build_network(tree, stenoses, 5e-6, removed=frozenset({0}))
    assert one.segments[0].stenosis is None and one.segments[1].stenosis is not None
    drop_both = solve_steady(both).outlets[0].pressure_drop_pa
    drop_one = solve_steady(one).outlets[0].pressure_drop_pa
    first_loss = solve_steady(both).stenoses[0].pressure_drop_pa
    assert drop_both - drop_one == pytest.approx(first_loss, rel=1e-6)
