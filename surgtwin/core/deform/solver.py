"""Soft-tissue solver: co-rotational hexahedra, implicit steps, matrix-free conjugate gradients.

Design (each choice measured; numbers in tests/core/test_deform_validation.py and
benchmarks/deform_speed.py):

- **Element**: 8-node hexahedra on the voxel grid of ``HexMesh`` (all cells are the same
  axis-aligned cube), so one 24x24 reference stiffness serves every element and is never stored
  per element. Trilinear hexahedra with plain 2x2x2 integration lock in bending (the cantilever
  of the validation tests came out ~4x too stiff with one cell through the thickness), so the
  shape-changing part uses Wilson/Taylor incompatible modes, condensed out once: bending is then
  right to a few per cent even with one or two cells through the thickness.
- **Nearly incompressible tissue**: the volume-changing energy is one mean-dilatation term per
  element, kappa/2 (v/V0 - 1)^2 V0 with v the element's exact current volume (selective
  reduced integration of the volumetric part), so nothing locks as nu -> 0.5, and because it uses
  the real volume rather than a linear strain, a block squeezed by 20 % at nu = 0.49 keeps its
  volume to a fraction of a per cent (plain co-rotational elasticity would lose ~3.5 %).
- **Large deformation**: co-rotational: per element the rotation nearest the deformation
  gradient at the centre, warm-started from the last step and refined by Mueller's torque
  iteration, which always yields a proper rotation. An inverted element is therefore not
  mirrored into a new rest state; it is pushed back (its volume term pushes too).
- **Time stepping**: backward Euler, one linearised solve per step (stable at any step size for
  the linearised system), Rayleigh damping (mass ``damping`` 1/s, stiffness
  ``stiffness_damping`` s). Tool interactions enter the same implicit matrix as per-node 3x3
  spring blocks (see ``contact.py``), so stiff grasps and contacts cannot destabilise a step.
- **Contact within a step**: the rigid tools' penalty is linearised on tangent planes and the
  contact set is made consistent with the step's result by an active-set loop (a node that ends
  inside a tool is added and the step re-solved, warm-started; a contact that ends pulling is
  dropped; at most ``MAX_CONTACT_PASSES`` solves). Linearising once per step let a node outside
  at the start end deep inside and be thrown out next step: at the default penalty a sphere
  pressed into liver chattered in a 3-step cycle with force peaks of ~50 N instead of ~0.05 N.
  The last solve's contacts are kept: they give the tools' forces and start the next step's set.
- **Linear solver**: matrix-free conjugate gradients, warm-started from the last velocity and
  stopped at a stated relative residual (``cg_tol``), preconditioned by the exact 3x3 diagonal
  blocks (block Jacobi) plus, by default, a coarse-grid correction (``precondition.py``: the
  voxel grid coarsened 2-4x, the rest-state Galerkin operator with the grasp springs, factorised
  by SuperLU when the step size, held nodes or grasp change). Block Jacobi alone needed 34 CG
  iterations per step at 20k elements, the two-level preconditioner 13 (benchmarks/deform_speed.py).
  Assembling a sparse matrix every step (rotations change) cost more than the matrix-free
  products, which stream only positions, rotations and volume gradients.
- **Kernels**: numba ``parallel=True`` on both cores (see ``kernels.py``); warp's CPU backend
  is single threaded (../shared/DESIGN.md measured numba ~2x faster on CPU), and a GPU is not
  part of the default install.
- **NaN guard**: a step with non-finite results is rejected, the state restored and the step
  retried at half the step size (up to ``MAX_HALVINGS`` times); if all tries fail the state is
  left as it was. The body never holds NaN.

Units are SI throughout (m, Pa, kg/m^3, N, s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from surgtwin.core.deform import kernels
from surgtwin.core.deform.contact import (
    Capsule,
    ContactPlanes,
    Grasp,
    Obstacles,
    add_contact_planes,
    add_grasp,
    contact_plane_forces,
    contact_planes,
    grasp_tool_force,
    missed_or_pulling,
    no_contacts,
)
from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.precondition import TwoLevel, pcg_two_level

MAX_HALVINGS = 6
ROTATION_ITERATIONS = 4
MAX_CONTACT_PASSES = 6  # linear solves per step (or static iteration) while the contact set settles
TWO_LEVEL_FROM_ELEMENTS = 2000  # "auto": below this block Jacobi alone was as fast (deform_speed.py)
CONTACT_MARGIN_CELLS = 0.05  # a contact of the last step stays on while its node is this close to the tool


class MaterialLike(Protocol):
    @property
    def youngs_pa(self) -> float: ...

    @property
    def poisson(self) -> float: ...

    @property
    def density_kg_m3(self) -> float: ...


class MeshLike(Protocol):
    nodes: np.ndarray
    elements: np.ndarray
    cell_m: float


@dataclass(frozen=True)
class StepStats:
    """What one step or static solve took."""

    cg_iterations: int  # summed over the linear solves
    residual: float  # last relative CG residual ||b - A x|| / ||b||
    dt: float  # step actually taken (s), after any halving; 0 for a static solve
    rejected: int = 0  # tries rejected for non-finite values
    outer_iterations: int = 1  # linearisations (static solves)
    converged: bool = True
    contact_passes: int = 1  # linear solves until the tools' contact set was consistent (summed)


class DeformableBody:
    """An elastic body on a hexahedral mesh, stepped in time or settled to equilibrium."""

    def __init__(
        self,
        mesh: MeshLike,
        material: MaterialLike,
        *,
        gravity: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 0.0),
        damping: float = 2.0,
        stiffness_damping: float = 0.0,
        fixed: np.ndarray | None = None,
        cg_tol: float = 1e-3,
        cg_max_iterations: int = 200,
        grasp_stiffness: float | None = None,
        contact_stiffness: float | None = None,
        preconditioner: str = "auto",
        coarsening: int | None = None,
    ) -> None:
        self.mesh = mesh
        self.rest = np.ascontiguousarray(mesh.nodes, dtype=np.float64)
        self.elements = np.ascontiguousarray(mesh.elements, dtype=np.int64)
        n_nodes = self.rest.shape[0]
        if self.elements.ndim != 2 or self.elements.shape[1] != 8 or self.elements.shape[0] == 0:
            raise SimulationError("the simulation mesh has no hexahedra")
        h = float(mesh.cell_m)
        e_mod, nu, rho = float(material.youngs_pa), float(material.poisson), float(material.density_kg_m3)
        if not (e_mod > 0 and rho > 0 and -1.0 < nu < 0.5 and h > 0):
            raise SimulationError(
                f"need Young's modulus > 0, density > 0, -1 < Poisson < 0.5 and cells > 0; got E={e_mod} Pa, "
                f"nu={nu}, rho={rho} kg/m3, cell={h} m"
            )
        self.material = material
        self.cell_m = h
        self.shear_modulus = e_mod / (2.0 * (1.0 + nu))
        self.bulk_modulus = e_mod / (3.0 * (1.0 - 2.0 * nu))
        self.rest_volume = h**3
        self.k_rest, rest_offsets, self.dndx_centre = kernels.reference_element(
            h, self.shear_modulus, self.bulk_modulus
        )
        self._check_cubes(rest_offsets)
        self.rest_force = self.k_rest @ rest_offsets.ravel()
        self.volume_stiffness = self.bulk_modulus / self.rest_volume
        self.gravity = np.asarray(gravity, dtype=np.float64).reshape(3)
        self.damping = float(damping)
        self.stiffness_damping = float(stiffness_damping)
        self.cg_tol = float(cg_tol)
        self.cg_max_iterations = int(cg_max_iterations)
        self.grasp_stiffness = float(grasp_stiffness) if grasp_stiffness else 100.0 * e_mod * h
        self.obstacles = Obstacles(float(contact_stiffness) if contact_stiffness else 1000.0 * e_mod * h)

        mass = np.zeros(n_nodes)
        np.add.at(mass, self.elements.ravel(), rho * self.rest_volume / 8.0)
        self.mass = mass
        slots = np.argsort(self.elements.ravel(), kind="stable")
        counts = np.bincount(self.elements.ravel(), minlength=n_nodes)
        self.node_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.node_slots = slots.astype(np.int64)

        self.anchored = (
            np.zeros(n_nodes, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool).copy()
        )
        if self.anchored.shape != (n_nodes,):
            raise SimulationError(
                f"the fixed mask has shape {self.anchored.shape}, the mesh has {n_nodes} nodes"
            )
        self._prescribed = np.zeros((n_nodes, 3), dtype=bool)
        self._targets = self.rest.copy()
        self.loads = np.zeros((n_nodes, 3))
        self._grasps: dict[int, Grasp] = {}
        self._next_handle = 1
        self._pinned = np.zeros(n_nodes, dtype=bool)  # nodes held by pin(), a subset of _prescribed

        n_el = self.elements.shape[0]
        self._buf = np.empty((n_el, 24))
        self._rots = np.empty((n_el, 3, 3))
        self._volumes = np.empty(n_el)
        self._vol_grads = np.empty((n_el, 24))
        self._inv_blocks = np.empty((n_nodes, 3, 3))
        self._springs = np.zeros((n_nodes, 3, 3))
        if preconditioner not in ("auto", "two-level", "jacobi"):
            raise SimulationError(
                f"no preconditioner {preconditioner!r}; use 'auto', 'two-level' or 'jacobi'"
            )
        two_level = preconditioner == "two-level" or (
            preconditioner == "auto" and self.elements.shape[0] >= TWO_LEVEL_FROM_ELEMENTS
        )
        self._coarse = TwoLevel(self.rest, self.elements, h, coarsening) if two_level else None
        grad_v = kernels.volume_gradient_reference(h).ravel()
        self._k_element_rest = self.k_rest + self.volume_stiffness * np.outer(grad_v, grad_v)
        self._m_element = rho * self.rest_volume / 8.0
        self._grasp_springs = np.zeros((n_nodes, 3, 3))
        self.reset()

    # ------------------------------------------------------------------ state
    def _check_cubes(self, rest_offsets: np.ndarray) -> None:
        offsets = self.rest[self.elements] - self.rest[self.elements[:, :1]]
        worst = float(np.abs(offsets - rest_offsets[None]).max())
        if worst > 1e-6 * self.cell_m:
            raise SimulationError(
                "the solver needs axis-aligned cubic cells in VTK hexahedron order "
                f"(a cell deviates by {worst:.3g} m from a cube of {self.cell_m:.3g} m)"
            )

    def reset(self) -> None:
        """Back to the rest shape, at rest; loads, tools and prescribed motions stay set."""
        self._x = self.rest.copy()
        self._v = np.zeros_like(self._x)
        self._quats = np.zeros((self.elements.shape[0], 4))
        self._quats[:, 0] = 1.0
        self._contacts = no_contacts()  # the tools' contacts of the last solve
        self._apply_constraints(self._x)

    @property
    def positions(self) -> np.ndarray:
        """Current node positions (N, 3), metres (a copy)."""
        return self._x.copy()

    @property
    def velocities(self) -> np.ndarray:
        return self._v.copy()

    @property
    def free(self) -> np.ndarray:
        """(N, 3) True where a degree of freedom moves freely (not anchored, not prescribed)."""
        return ~(self._prescribed | self.anchored[:, None])

    def displacement(self) -> np.ndarray:
        """Node displacements from the rest shape (N, 3), metres."""
        return self._x - self.rest

    def max_displacement_m(self) -> float:
        return float(np.linalg.norm(self.displacement(), axis=1).max())

    # ------------------------------------------------------------ constraints
    def set_prescribed(
        self,
        node_indices: np.ndarray,
        positions_m: np.ndarray,
        axes: tuple[bool, bool, bool] = (True, True, True),
    ) -> None:
        """Hold the chosen axes of these nodes at the given positions (N, 3) or one position (3,)."""
        nodes = np.asarray(node_indices, dtype=np.int64).ravel()
        pos = np.broadcast_to(np.asarray(positions_m, dtype=np.float64), (nodes.size, 3))
        mask = np.asarray(axes, dtype=bool)
        for axis in np.nonzero(mask)[0]:
            self._prescribed[nodes, axis] = True
            self._targets[nodes, axis] = pos[:, axis]

    def clear_prescribed(self) -> None:
        self._prescribed[:] = False
        self._targets[:] = self.rest
        self._pinned[:] = False  # pins are prescribed nodes too

    def _apply_constraints(self, x: np.ndarray) -> None:
        x[self.anchored] = self.rest[self.anchored]
        x[self._prescribed] = self._targets[self._prescribed]

    # ------------------------------------------------------------------ loads
    def set_load(self, node_indices: np.ndarray, force_n: np.ndarray) -> None:
        """Add a force (N, per node) to these nodes; ``force_n`` is (3,) or (k, 3)."""
        nodes = np.asarray(node_indices, dtype=np.int64).ravel()
        np.add.at(self.loads, nodes, np.broadcast_to(np.asarray(force_n, dtype=np.float64), (nodes.size, 3)))

    def clear_loads(self) -> None:
        self.loads[:] = 0.0

    # ------------------------------------------------------------------ tools
    def _free_nodes_near(
        self, point: np.ndarray, radius_m: float | None, held: np.ndarray, action: str
    ) -> np.ndarray:
        """The nodes not ``held`` within ``radius_m`` of the point (default 0.6 cell), else the
        nearest such node when within two cells; SimulationError when there is none."""
        radius = 0.6 * self.cell_m if radius_m is None else float(radius_m)
        dist = np.linalg.norm(self._x - point, axis=1)
        dist[held] = np.inf
        nodes = np.nonzero(dist <= radius)[0]
        if nodes.size:
            return nodes
        nearest = int(np.argmin(dist))
        if not np.isfinite(dist[nearest]) or dist[nearest] > 2.0 * self.cell_m:
            raise SimulationError(
                f"nothing to {action} there: no free tissue node within two cells of the point"
            )
        return np.array([nearest])

    def grasp(self, point_m: np.ndarray, radius_m: float | None = None) -> int:
        """Bind the nodes within ``radius_m`` of the point (default 0.6 cell) to a tool; returns a handle.

        With no node in the radius the nearest free node is taken if it is within two cells.
        """
        point = np.asarray(point_m, dtype=np.float64).reshape(3)
        nodes = self._free_nodes_near(point, radius_m, self.anchored, "grasp")
        handle = self._next_handle
        self._next_handle += 1
        self._grasps[handle] = Grasp(nodes, self._x[nodes] - point, point.copy(), self.grasp_stiffness)
        return handle

    def _grasp_of(self, handle: int) -> Grasp:
        try:
            return self._grasps[handle]
        except KeyError:
            raise SimulationError(f"no grasp with handle {handle}") from None

    def drag(self, handle: int, target_m: np.ndarray) -> None:
        self._grasp_of(handle).target = np.asarray(target_m, dtype=np.float64).reshape(3).copy()

    def release(self, handle: int) -> None:
        self._grasps.pop(handle, None)

    def grasped_nodes(self, handle: int) -> np.ndarray:
        return self._grasp_of(handle).nodes.copy()

    def tool_force(self, handle: int) -> np.ndarray:
        """Force (N) the tissue exerts on the grasping tool, at the current positions."""
        return grasp_tool_force(self._grasp_of(handle), self._x)

    def set_sphere(self, center_m: np.ndarray, radius_m: float) -> None:
        """A rigid frictionless sphere the tissue cannot enter (penalty on the nodes inside)."""
        self.obstacles.sphere = (np.asarray(center_m, dtype=np.float64).reshape(3).copy(), float(radius_m))

    def clear_sphere(self) -> None:
        self.obstacles.sphere = None

    def contact_force(self) -> np.ndarray:
        """Force (N) the tissue exerts on the sphere, at the current positions."""
        return self.tool_forces()["sphere"]

    def set_plane(self, point_m: np.ndarray, normal: np.ndarray) -> None:
        """A retraction plane: nodes are kept on the side ``normal`` points to (replaces any plane)."""
        n = np.asarray(normal, dtype=np.float64).reshape(3)
        norm = float(np.linalg.norm(n))
        if norm == 0.0:
            raise SimulationError("the plane's normal is zero")
        self.obstacles.planes = [(np.asarray(point_m, dtype=np.float64).reshape(3).copy(), n / norm)]

    def clear_plane(self) -> None:
        self.obstacles.planes = []

    def set_capsule(self, start_m: np.ndarray, end_m: np.ndarray, radius_m: float) -> None:
        """A rigid frictionless capsule (an instrument shaft: the points within ``radius_m`` of the
        segment start-end) the tissue cannot enter; replaces any capsule."""
        radius = float(radius_m)
        start = np.asarray(start_m, dtype=np.float64).reshape(3).copy()
        end = np.asarray(end_m, dtype=np.float64).reshape(3).copy()
        if not (radius > 0.0 and np.isfinite(radius) and np.isfinite(start).all() and np.isfinite(end).all()):
            raise SimulationError(f"a capsule needs finite end points and a radius > 0 (got {radius} m)")
        self.obstacles.capsule = Capsule(start, end, radius)

    def clear_capsule(self) -> None:
        self.obstacles.capsule = None

    def tool_forces(self) -> dict[str, np.ndarray]:
        """Force (N) the tissue exerts on each rigid tool (``sphere``, ``capsule``, ``planes``),
        at the current positions through the contacts of the last step or static solve (the
        penalties the solver balanced), from the nodes that can move: a fixed node inside a tool
        is the anchor's business. A tool moved since then reports its force after the next step."""
        held = self.anchored | self._prescribed.all(axis=1)
        return contact_plane_forces(self._contacts, self.obstacles, self.obstacles.stiffness, self._x, ~held)

    def capsule_force(self) -> np.ndarray:
        """Force (N) the tissue exerts on the capsule, at the current positions (zeros if none)."""
        return self.tool_forces()["capsule"]

    def plane_force(self) -> np.ndarray:
        """Force (N) the tissue exerts on the retraction plane, at the current positions."""
        return self.tool_forces()["planes"]

    # ------------------------------------------------------------------- pins
    def pin(self, point_m: np.ndarray, radius_m: float | None = None) -> np.ndarray:
        """Fix the tissue at a picked point: the free nodes within ``radius_m`` of it (default 0.6
        cell; the nearest free node if none is that close, when within two cells) are held where
        they are now. Returns the nodes newly pinned (anchored, prescribed or pinned nodes are
        already held and are left as they are)."""
        point = np.asarray(point_m, dtype=np.float64).reshape(3)
        held = self.anchored | self._prescribed.any(axis=1)
        nodes = self._free_nodes_near(point, radius_m, held, "pin")
        self.set_prescribed(nodes, self._x[nodes])
        self._v[nodes] = 0.0
        self._pinned[nodes] = True
        return nodes

    def clear_pins(self) -> None:
        """Free every pinned node (other prescribed nodes and anchors stay held)."""
        self._prescribed[self._pinned] = False
        self._targets[self._pinned] = self.rest[self._pinned]
        self._pinned[:] = False

    def pinned_nodes(self) -> np.ndarray:
        """Indices of the nodes held by :meth:`pin`."""
        return np.flatnonzero(self._pinned)

    # ------------------------------------------------------------- mechanics
    def _update_elements(self, x: np.ndarray) -> None:
        kernels.update_elements(
            x,
            self.elements,
            self.dndx_centre,
            kernels.GAUSS_DNDXI,
            self._quats,
            self._rots,
            self._volumes,
            self._vol_grads,
            ROTATION_ITERATIONS,
        )

    def _elastic_forces(self, x: np.ndarray) -> np.ndarray:
        kernels.element_forces(
            x,
            self.elements,
            self._rots,
            self.k_rest,
            self.rest_force,
            self._volumes,
            self._vol_grads,
            self.rest_volume,
            self.bulk_modulus,
            self._buf,
        )
        out = np.empty_like(x)
        kernels.gather(self._buf, self.node_ptr, self.node_slots, out)
        return out

    def _forces_without_contact(self, x: np.ndarray) -> np.ndarray:
        """Elastic, gravity, load and grasp forces at ``x`` (elements must be updated); fills the
        grasps' spring blocks."""
        f = self._elastic_forces(x)
        f += self.mass[:, None] * self.gravity[None, :]
        f += self.loads
        self._grasp_springs[:] = 0.0
        for g in self._grasps.values():
            add_grasp(g, x, f, self._grasp_springs)
        return f

    def _total_forces(self, x: np.ndarray) -> np.ndarray:
        """All forces on the nodes at ``x`` (elements must be updated), the tools' through the
        contacts of the last solve; fills the spring blocks."""
        f = self._forces_without_contact(x)
        self._springs[:] = self._grasp_springs
        add_contact_planes(self._contacts, self.obstacles.stiffness, x, f, self._springs, pressing_only=True)
        return f

    def _has_obstacles(self) -> bool:
        o = self.obstacles
        return o.sphere is not None or o.capsule is not None or bool(o.planes)

    def _solve_with_contacts(
        self,
        x: np.ndarray,
        b: np.ndarray,
        u: np.ndarray,
        scale: float,
        coefficients: tuple[float, float],
        tol: float,
        max_iterations: int,
    ) -> tuple[int, float, int]:
        """Solve (cm M + ck K + scale^2 S) u = b + scale f_contact for the motion u (positions
        x + scale u) with a contact set consistent with the result (an active-set loop).

        ``b`` holds every force but the tools'. The tools' penalties are linear springs on planes
        tangent to the tool (contact.py), so within a pass the system is linear. A pass whose
        result has a node inside a tool it did not know about, or a contact that pulls, is
        redone with the contact set taken at the result (warm-started), at most
        ``MAX_CONTACT_PASSES`` times. Returns (CG iterations, last residual, passes)."""
        cm, ck = coefficients
        k = self.obstacles.stiffness
        margin = CONTACT_MARGIN_CELLS * self.cell_m
        contacts: ContactPlanes | None = (
            contact_planes(self.obstacles, x, self._contacts, margin=margin)
            if self._has_obstacles()
            else None
        )
        total_it, res, passes = 0, 0.0, 0
        while True:
            passes += 1
            rhs = b
            self._springs[:] = self._grasp_springs
            if contacts is not None and contacts.nodes.size:
                fc = np.zeros_like(x)
                add_contact_planes(contacts, k, x, fc, self._springs)
                rhs = b + scale * fc
            it, res = self._solve(rhs, u, cm, ck, scale * scale, tol, max_iterations)
            total_it += it
            if contacts is None or passes >= MAX_CONTACT_PASSES or not np.isfinite(u).all():
                break
            trial = x + scale * u
            if not missed_or_pulling(contacts, self.obstacles, trial):
                break
            contacts = contact_planes(self.obstacles, trial, contacts, keep_planes=True)
        self._contacts = no_contacts() if contacts is None else contacts
        return total_it, res, passes

    def elastic_forces(self) -> np.ndarray:
        """Elastic force on each node at the current positions (N, 3), newtons."""
        self._update_elements(self._x)
        return self._elastic_forces(self._x)

    def reaction_forces(self) -> np.ndarray:
        """Force the supports apply on anchored/prescribed degrees of freedom (0 elsewhere), (N, 3)."""
        self._update_elements(self._x)
        f = self._total_forces(self._x)
        return np.where(self.free, 0.0, -f)

    def _system(self, free: np.ndarray, cm: float, ck: float, cs: float) -> tuple[Any, ...]:
        """The arguments every system kernel takes, for (cm M + ck K + cs S) on ``free`` dofs."""
        return (
            self.elements,
            self._rots,
            self.k_rest,
            self._vol_grads,
            self.volume_stiffness,
            self._buf,
            self.node_ptr,
            self.node_slots,
            self.mass,
            self._springs,
            free,
            cm,
            ck,
            cs,
        )

    def _solve(
        self, b: np.ndarray, x: np.ndarray, cm: float, ck: float, cs: float, tol: float, max_iterations: int
    ) -> tuple[int, float]:
        """Preconditioned CG for (cm M + ck K + cs S) x = b on the free dofs; x holds the
        constrained values on entry and the solution on return."""
        free = self.free
        system = self._system(free, cm, ck, cs)
        # numba dispatchers are untyped callables; the shared argument tuple confuses mypy
        product, jacobi, pcg = cast(Any, (kernels.system_product, kernels.block_jacobi, kernels.pcg))
        jacobi(*system, self._inv_blocks)
        ap = np.empty_like(x)
        constrained = np.where(free, 0.0, x)
        rhs = np.where(free, b, 0.0)
        if np.any(constrained):
            product(constrained, *system, ap)
            rhs -= ap
        ref = float(
            np.sqrt(cast(Any, kernels._dot)(rhs, rhs))
        )  # not BLAS: its threads stall on a busy machine
        product(np.where(free, x, 0.0), *system, ap)
        r = rhs - ap
        if ref == 0.0:
            x[free] = 0.0
            return 0, 0.0
        if self._coarse is None:
            it, res = pcg(x, r, ref, tol, max_iterations, *system, self._inv_blocks)
        else:
            rest_element = cm * self._m_element * np.eye(24) + ck * self._k_element_rest
            self._coarse.prepare(rest_element, cm, ck, free, cs * self._grasp_springs)
            it, res = pcg_two_level(x, r, ref, tol, max_iterations, system, self._inv_blocks, self._coarse)
            if not res <= tol and it < max_iterations:  # broke down (not positive): go on with block Jacobi
                more, res = pcg(x, r, ref, tol, max_iterations - it, *system, self._inv_blocks)
                it += more
        return int(it), float(res)

    def step(self, dt: float) -> StepStats:
        """One backward-Euler step of ``dt`` seconds (halved on non-finite results)."""
        x0, v0, q0, c0 = self._x.copy(), self._v.copy(), self._quats.copy(), self._contacts
        rejected = 0
        h = float(dt)
        for _ in range(MAX_HALVINGS + 1):
            try:
                it, res, passes = self._try_step(h)
            except FloatingPointError:
                it, res, passes = 0, float("nan"), 1
            if np.isfinite(self._x).all() and np.isfinite(self._v).all() and np.isfinite(res):
                return StepStats(it, res, h, rejected, converged=res <= self.cg_tol, contact_passes=passes)
            rejected += 1
            self._x, self._v, self._quats, self._contacts = x0.copy(), v0.copy(), q0.copy(), c0
            h *= 0.5
        return StepStats(0, float("nan"), 0.0, rejected, converged=False)

    def _try_step(self, dt: float) -> tuple[int, float, int]:
        x = self._x
        self._update_elements(x)
        f = self._forces_without_contact(x)
        cm = 1.0 + dt * self.damping
        ck = dt * self.stiffness_damping + dt * dt
        b = self.mass[:, None] * self._v + dt * f
        v = self._v.copy()
        free = self.free
        target = np.where(self.anchored[:, None], self.rest, self._targets)
        v[~free] = ((target - x) / dt)[~free]
        it, res, passes = self._solve_with_contacts(
            x, b, v, dt, (cm, ck), self.cg_tol, self.cg_max_iterations
        )
        self._v = v
        self._x = x + dt * v
        self._apply_constraints(self._x)
        return it, res, passes

    def solve_static(
        self,
        tol: float = 1e-6,
        max_steps: int = 50,
        *,
        cg_tol: float = 1e-8,
        max_increment_cells: float = 1.0,
    ) -> StepStats:
        """Settle to equilibrium under the current loads, tools and constraints.

        Newton-like iterations on the co-rotational system (rotations, volumes and contacts
        re-linearised each iteration; each linear solve to ``cg_tol``) until the largest
        position change is below ``tol`` x cell size. Increments are capped at
        ``max_increment_cells`` cells so large motions are approached in safe steps.
        Velocities are zeroed.
        """
        reg = 1e-6 * self.shear_modulus / (float(self.material.density_kg_m3) * self.cell_m**2)
        total_it, res, change = 0, 0.0, np.inf
        outer = total_passes = 0
        free = self.free
        while outer < max_steps:
            outer += 1
            x = self._x
            self._update_elements(x)
            f = self._forces_without_contact(x)
            dx = np.zeros_like(x)
            target = np.where(self.anchored[:, None], self.rest, self._targets)
            dx[~free] = (target - x)[~free]
            it, res, passes = self._solve_with_contacts(
                x, f, dx, 1.0, (reg, 1.0), cg_tol, 20 * self.cg_max_iterations
            )
            total_it += it
            total_passes += passes
            if not np.isfinite(dx).all():
                raise SimulationError("the static solve diverged (non-finite increment)")
            step = float(np.abs(dx).max())
            cap = max_increment_cells * self.cell_m
            if step > cap:
                dx *= cap / step
            self._x = x + dx
            change = step
            if change <= tol * self.cell_m:
                break
        self._v[:] = 0.0
        self._update_elements(self._x)
        return StepStats(total_it, res, 0.0, 0, outer, change <= tol * self.cell_m, total_passes)

    # --------------------------------------------------------------- results
    def element_volumes(self) -> np.ndarray:
        """Current volume of each element (m^3), exact for the trilinear hexahedron."""
        self._update_elements(self._x)
        return self._volumes.copy()

    def inverted_elements(self) -> int:
        """How many elements have an inverted (zero or negative Jacobian) corner."""
        return int((kernels.corner_jacobians_min(self._x, self.elements) <= 0.0).sum())

    def strains(self) -> np.ndarray:
        """Co-rotated small strain at each element centre, Voigt (E, 6), engineering shear."""
        self._update_elements(self._x)
        out = np.empty((self.elements.shape[0], 6))
        kernels.centre_strains(self._x, self.elements, self._rots, self.dndx_centre, out)
        return out

    def von_mises_stress(self) -> np.ndarray:
        """Von Mises stress per element (Pa) from the co-rotated strain at the centre."""
        eps = self.strains()
        mean = eps[:, :3].mean(axis=1, keepdims=True)
        dev = eps[:, :3] - mean
        sq = (dev**2).sum(axis=1) + 0.5 * (eps[:, 3:] ** 2).sum(axis=1)  # dev:dev with tensor shear
        return np.asarray(2.0 * self.shear_modulus * np.sqrt(1.5 * sq))

    def nodal_average(self, per_element: np.ndarray) -> np.ndarray:
        """Average a per-element value onto the nodes (for colouring a surface)."""
        vals = np.asarray(per_element, dtype=np.float64)
        total = np.zeros(self.rest.shape[0])
        np.add.at(total, self.elements.ravel(), np.repeat(vals, 8))
        counts = np.diff(self.node_ptr)
        return np.asarray(total / np.maximum(counts, 1))
