"""Contact stays consistent within a step: an instrument pressed slowly into liver-stiffness
tissue feels a force that rises smoothly to the quasi-static value, whatever the penalty.

The case a colleague found (docs/deformation.md): on the 500-element box of the app's tests
(4.45 mm cells), a 10 mm sphere moved a quarter cell per step 2-4 mm into the tissue used to
alternate between contact sets in a 3-step cycle with force peaks of tens of newtons at the
core's default penalty (1000 E h per node), where the settled force is about 0.05 N; a
1.5-cell-wide shaft pressed deeper than a cell spiked and flipped sign even at 100 E h.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.deform.contact import closest_on_segment
from surgtwin.core.deform.materials import material
from surgtwin.core.deform.mesh import box_mesh
from surgtwin.core.deform.solver import DeformableBody

LIVER = material("liver")
CELL = 0.00445  # m: the app tests' 500-element box
STEP = 1.0 / 60.0
MOVE_PER_STEP = 0.25 * CELL  # what the app moves a rigid tool by per step
OFF_NODE = np.array([5.3 * CELL, 5.2 * CELL])  # press between nodes, not on one


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


def liver_box(penalty_factor: float | None) -> DeformableBody:
    """10 x 10 x 5 cells of 4.45 mm, base held; ``penalty_factor`` x E x cell per node (None: the
    core's default)."""
    mesh = box_mesh((10 * CELL, 10 * CELL, 5 * CELL), (10, 10, 5))
    stiffness = None if penalty_factor is None else penalty_factor * LIVER.youngs_pa * CELL
    return DeformableBody(mesh, LIVER, fixed=mesh.nodes[:, 2] < 1e-9, contact_stiffness=stiffness)  # type: ignore[arg-type]


def place(body: DeformableBody, tool: str, radius: float, depth: float) -> np.ndarray:
    """Put the tool ``depth`` below the top face (a sphere, or a shaft along x); returns its axis
    end points (equal for the sphere)."""
    centre = np.array([OFF_NODE[0], OFF_NODE[1], 5 * CELL + radius - depth])
    if tool == "sphere":
        body.set_sphere(centre, radius)
        return np.array([centre, centre])
    start, end = centre - [0.01, 0.0, 0.0], centre + [0.01, 0.0, 0.0]
    body.set_capsule(start, end, radius)
    return np.array([start, end])


def press_slowly(
    tool: str, radius: float, depth: float, penalty_factor: float | None, hold_steps: int = 30
) -> tuple[np.ndarray, np.ndarray, DeformableBody]:
    """Move the tool down from just above the surface by a quarter cell a step to ``depth``, then
    hold it. Returns the vertical force on the tool each step, the deepest penetration of a node
    into the tool each step (m), and the body."""
    body = liver_box(penalty_factor)
    forces, penetrations = [], []
    reach = -0.25 * CELL
    while hold_steps > 0:
        reach = min(depth, reach + MOVE_PER_STEP)
        axis = place(body, tool, radius, reach)
        stats = body.step(STEP)
        assert stats.converged and stats.rejected == 0
        forces.append(body.tool_forces()[tool][2])
        x = body.positions
        gap = np.linalg.norm(x - closest_on_segment(x, axis[0], axis[1]), axis=1) - radius
        penetrations.append(max(0.0, -float(gap.min())))
        if reach >= depth:
            hold_steps -= 1
    return np.array(forces), np.array(penetrations), body


def quasi_static_force(tool: str, radius: float, depth: float, penalty_factor: float | None) -> float:
    body = liver_box(penalty_factor)
    place(body, tool, radius, depth)
    assert body.solve_static(tol=1e-6).converged
    return float(body.tool_forces()[tool][2])


def steps_to_reach(depth: float) -> int:
    return int(np.ceil((depth + 0.25 * CELL) / MOVE_PER_STEP))


@pytest.mark.parametrize("depth", [0.002, 0.003, 0.004])
def test_sphere_pressed_slowly_at_the_default_penalty_settles_without_chatter(depth: float) -> None:
    forces, penetrations, _ = press_slowly("sphere", 0.005, depth, None)
    settled = quasi_static_force("sphere", 0.005, depth, None)
    assert 0.01 < settled < 0.2  # newtons: a 10 mm sphere a few mm into 4 kPa tissue
    touching = forces[np.argmax(forces > 0.0) :]
    assert np.all(touching > 0.0), "the tissue always pushes the tool back, once in contact"
    # the step the tool arrives may overshoot a little: each step linearises the elasticity once
    # (rotations from the step's start) while the tool moves a quarter cell
    assert forces.max() < 1.35 * settled, "no force peaks far above the settled force"
    arrived = steps_to_reach(depth)
    held = forces[arrived:]
    assert np.abs(np.diff(held)).max() < 0.15 * settled, "no jumps once the tool stands still"
    assert held[-1] == pytest.approx(settled, rel=0.01)
    assert penetrations.max() < 0.01 * CELL, "no node ends a step inside the tool"


@pytest.mark.parametrize("penalty_factor", [100.0, 1000.0])
def test_shaft_pressed_deeper_than_a_cell_keeps_pushing_back(penalty_factor: float) -> None:
    """A shaft 1.5 cells wide (the app's narrowest) pressed 6 mm: node lines slide around it, so
    the force may rise and relax, but it never flips sign, spikes or lets a node sit inside."""
    radius, depth = 0.75 * CELL, 0.006
    forces, penetrations, _ = press_slowly("capsule", radius, depth, penalty_factor)
    settled = quasi_static_force("capsule", radius, depth, penalty_factor)
    assert settled > 0.01
    touching = forces[np.argmax(forces > 0.0) :]
    assert np.all(touching > 0.0)
    assert forces.max() < 3.0 * settled
    assert forces[-1] == pytest.approx(settled, rel=0.01)
    assert penetrations.max() < 0.01 * CELL


def test_the_settled_press_hardly_depends_on_the_penalty() -> None:
    """With contact consistent within each step the penalty only sets how far nodes sink into the
    tool (force / stiffness): 100 E h and 1000 E h give the same press to a few per cent."""
    soft, soft_pen, soft_body = press_slowly("sphere", 0.005, 0.003, 100.0, hold_steps=20)
    stiff, stiff_pen, stiff_body = press_slowly("sphere", 0.005, 0.003, 1000.0, hold_steps=20)
    assert stiff[-1] == pytest.approx(soft[-1], rel=0.03)
    assert stiff_pen[-1] < soft_pen[-1]  # the stiffer penalty lets the nodes sink in less
    dent = soft_body.rest[:, 2].max() - soft_body.positions[:, 2].min()
    assert dent > 0.5 * 0.003
    assert np.abs(stiff_body.positions - soft_body.positions).max() < 0.03 * dent
