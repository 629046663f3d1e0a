"""3D flow preview: D3Q19 lattice Boltzmann with TRT collision on a voxelised lumen.

- Lattice: D3Q19, float32 populations, two buffers (pull scheme, one fused stream-collide kernel).
- Collision: two-relaxation-time (TRT) with the magic parameter Lambda = 3/16, which puts
  halfway bounce-back walls exactly midway between a fluid and a solid cell for Poiseuille flow
  and keeps the scheme stable at blood's low viscosity (tau close to 1/2).
- Walls: halfway bounce-back wherever a fluid cell's neighbour is solid (outside the mask).
- Open boundaries: the fluid cells on the first layer along ``axis`` are a velocity inlet and
  those on the last layer a pressure (density) outlet at zero gauge pressure, both by
  non-equilibrium extrapolation (Guo, Zheng & Shi 2002): stable and simple on arbitrary
  cross-sections, unlike Zou-He which needs a flat face per cell.
- Storage: fluid cells only (:mod:`surgtwin.core.flow.lbm_layout`), walked in runs of
  consecutive stored cells that pull from contiguous slices where they can and through a
  per-cell gather table elsewhere. A vessel tree fills a few per cent of its bounding box, so
  this cuts memory about 20-fold there and lets finer lattices fit.
- Units: :class:`LbmSetup` picks the time step so the expected peak velocity (twice the mean
  inlet velocity, as in Poiseuille flow) is ``max_lattice_velocity`` lattice units; results are
  converted back to m/s and Pa (gauge, relative to the outlet).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from surgtwin.core.flow import lbm_kernels as k
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.lbm_layout import fluid_layout
from surgtwin.core.progress import Progress, ensure_progress

MAGIC_LAMBDA = 3.0 / 16.0
InletProfile = Literal["plug", "parabolic"]


@dataclass(frozen=True)
class LbmSetup:
    """Physical parameters of a run and the lattice units they map to."""

    dx_m: float
    inlet_velocity_m_s: float  # mean velocity over the inlet cross-section
    viscosity_pa_s: float = 3.5e-3
    density_kg_m3: float = 1060.0
    max_lattice_velocity: float = 0.05
    smagorinsky: float = 0.0  # LES constant C (0: none; ~0.1 for jets at Re ~ 1000 on coarse grids)

    def __post_init__(self) -> None:
        if not 0.0 <= self.smagorinsky <= 0.3:
            raise FlowError("the Smagorinsky constant must be between 0 and 0.3 (0.1 is usual)")
        values = (self.dx_m, self.inlet_velocity_m_s, self.viscosity_pa_s, self.density_kg_m3)
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise FlowError("cell size, inlet velocity, viscosity and density must all be positive")
        if not 0 < self.max_lattice_velocity <= 0.1:
            raise FlowError("the lattice velocity must be in (0, 0.1] to keep the flow nearly incompressible")

    @property
    def dt_s(self) -> float:
        """Time step: the expected peak velocity (2 x mean) moves max_lattice_velocity cells a step."""
        return self.max_lattice_velocity * self.dx_m / (2.0 * self.inlet_velocity_m_s)

    @property
    def lattice_viscosity(self) -> float:
        kinematic = self.viscosity_pa_s / self.density_kg_m3
        return kinematic * self.dt_s / self.dx_m**2

    @property
    def tau(self) -> float:
        """BGK-equivalent relaxation time of the symmetric (viscous) moments."""
        return 3.0 * self.lattice_viscosity + 0.5

    @property
    def omega_plus(self) -> float:
        return 1.0 / self.tau

    @property
    def omega_minus(self) -> float:
        return 1.0 / (0.5 + MAGIC_LAMBDA / (self.tau - 0.5))

    @property
    def velocity_scale(self) -> float:
        """m/s per lattice velocity unit."""
        return self.dx_m / self.dt_s

    @property
    def pressure_scale(self) -> float:
        """Pa per lattice pressure unit (p = (rho - 1) / 3 in lattice units)."""
        return self.density_kg_m3 * self.velocity_scale**2


@dataclass(frozen=True)
class LbmResult:
    velocity_m_s: np.ndarray  # (nx, ny, nz, 3) float32, zero outside the fluid
    pressure_pa: np.ndarray  # (nx, ny, nz) float32 gauge pressure (outlet = 0), NaN outside the fluid
    steps: int
    mlups: float  # million fluid-cell updates per second
    converged: bool  # reached the steady tolerance (always True when a fixed step count was asked)
    fluid_cells: int
    setup: LbmSetup
    averaged_steps: int = 0  # fields are the mean over this many final steps (0: the last step's)
    solver_bytes: int = 0  # populations and pull tables (fluid cells only)
    box_bytes: int = 0  # what the populations would have taken had the whole box been stored


@dataclass(frozen=True)
class OpenBoundary:
    """One inlet or outlet: a layer of fluid cells whose populations are set every step.

    ``inward`` is the step (e.g. ``(0, 0, 1)``, or one per cell as an (n, 3) array) from each
    boundary cell to the fluid cell its non-equilibrium part is copied from. ``velocity_m_s``
    (n, 3) prescribes the velocity (an inlet, or an outlet with an imposed outflow); ``None``
    makes it a pressure outlet at gauge pressure 0 (the reference every reported pressure is
    relative to).
    """

    cells: np.ndarray  # (n, 3) integer indices into the fluid mask
    inward: tuple[int, int, int] | np.ndarray
    velocity_m_s: np.ndarray | None = None


def box_boundaries(
    mask: np.ndarray, setup: LbmSetup, axis: int = 2, inlet_profile: InletProfile = "plug"
) -> list[OpenBoundary]:
    """Velocity inlet on the first layer along ``axis`` (mean ``setup.inlet_velocity_m_s``),
    pressure outlet on the last: a straight vessel running through the box."""
    if mask.ndim != 3 or axis not in (0, 1, 2) or mask.shape[axis] < 3:
        raise FlowError("the fluid mask must be 3D with at least 3 cells along the flow axis")
    inlet = np.argwhere(np.take(mask, [0], axis=axis))
    outlet = np.argwhere(np.take(mask, [mask.shape[axis] - 1], axis=axis))
    if not len(inlet) or not len(outlet):
        raise FlowError("the vessel must touch both the inlet face and the outlet face of the box")
    outlet[:, axis] = mask.shape[axis] - 1
    step = np.zeros(3, dtype=int)
    step[axis] = 1
    speed = _inlet_speeds(mask, inlet, axis, inlet_profile) * setup.inlet_velocity_m_s
    velocity = np.zeros((len(inlet), 3))
    velocity[:, axis] = speed
    forward, backward = tuple(int(v) for v in step), tuple(int(-v) for v in step)
    return [OpenBoundary(inlet, forward, velocity), OpenBoundary(outlet, backward, None)]  # type: ignore[arg-type]


def _inlet_speeds(mask: np.ndarray, inlet: np.ndarray, axis: int, profile: InletProfile) -> np.ndarray:
    """Speed per inlet cell relative to the mean (mean 1)."""
    if profile == "plug":
        return np.ones(len(inlet))
    if profile == "parabolic":
        # 1 - (r/R)^2 written with the distance d to the wall: r = R - d, R the largest d.
        face = np.take(mask, 0, axis=axis)
        dist = ndimage.distance_transform_edt(np.pad(face, 1)) - 0.5  # wall halfway between cells
        d = dist[tuple(np.delete(inlet.T + 1, axis, axis=0))]
        shape = 1.0 - (1.0 - d / d.max()) ** 2
        return shape / shape.mean()
    raise FlowError(f"unknown inlet profile {profile!r}: use 'plug' or 'parabolic'")


class LbmSolver:
    """The lattice, boundaries and population buffers of one run; :func:`run` drives it."""

    def __init__(
        self,
        mask: np.ndarray,
        setup: LbmSetup,
        axis: int = 2,
        inlet_profile: InletProfile = "plug",
        *,
        boundaries: list[OpenBoundary] | None = None,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        if boundaries is None:
            boundaries = box_boundaries(mask, setup, axis, inlet_profile)
        if mask.ndim != 3:
            raise FlowError("the fluid mask must be 3D")
        self.setup = setup
        self.shape = mask.shape
        kind = np.where(mask, k.FLUID, k.SOLID).astype(np.uint8)
        for b in boundaries:
            if len(b.cells) == 0 or not mask[tuple(np.asarray(b.cells).T)].all():
                raise FlowError("every inlet and outlet needs cells inside the fluid")
            kind[tuple(np.asarray(b.cells).T)] = k.INLET if b.velocity_m_s is not None else k.OUTLET
        padded = np.pad(kind, 1)  # a solid frame: every stored cell has its neighbours in bounds
        self.layout = fluid_layout(padded)
        self._strides = np.array([padded.shape[1] * padded.shape[2], padded.shape[2], 1], dtype=np.int64)
        flat = padded.ravel()
        cells, inner, given, velocity = [], [], [], []
        for b in boundaries:
            flat_cells = (np.asarray(b.cells, dtype=np.int64) + 1) @ self._strides
            flat_inner = flat_cells + np.asarray(b.inward, dtype=np.int64) @ self._strides
            if (flat[flat_inner] != k.FLUID).any():
                raise FlowError("every inlet and outlet cell needs a fluid cell next to it, inwards")
            cells.append(self.layout.index(flat_cells))
            inner.append(self.layout.index(flat_inner))
            given.append(np.full(len(flat_cells), b.velocity_m_s is not None))
            v = (
                np.zeros((len(flat_cells), 3))
                if b.velocity_m_s is None
                else np.asarray(b.velocity_m_s, float)
            )
            velocity.append(v / setup.velocity_scale)
        self.boundary = np.concatenate(cells)
        self.inner = np.concatenate(inner)
        self.is_inlet = np.concatenate(given)  # velocity given (else pressure)
        self.inlet_velocity = np.concatenate(velocity).astype(np.float32)
        self.velocity_gain = np.ones(self.boundary.size, dtype=np.float32)  # see run(control=...)
        self.all_fluid = np.arange(self.layout.cells, dtype=np.int64)  # every stored cell
        self.cx, self.cy, self.cz = (k.VELOCITIES[:, i].astype(np.float32) for i in range(3))
        self.f = np.empty((k.Q, self.layout.cells), dtype=np.float32)
        self.f[:] = k.WEIGHTS[:, None]  # rest at density 1
        self.g = self.f.copy()

    def storage_index(self, cells: np.ndarray) -> np.ndarray:
        """Where the fluid cells ``(n, 3)`` (indices into the mask) are stored in ``f``."""
        return self.layout.index((np.asarray(cells, dtype=np.int64) + 1) @ self._strides)

    @property
    def fluid_cells(self) -> int:
        return int(self.all_fluid.size)

    def step(self, n: int = 1) -> None:
        s = self.setup
        for _ in range(n):
            lay = self.layout
            k.stream_collide(
                self.f, self.g, lay.run_start, lay.run_length, lay.neighbour_start, lay.gather_start,
                lay.gather, k.WEIGHTS, self.cx, self.cy, self.cz, s.tau, MAGIC_LAMBDA, s.smagorinsky,
            )  # fmt: skip
            k.open_boundaries(
                self.g, self.boundary, self.inner, self.is_inlet, self.inlet_velocity, 1.0,
                k.WEIGHTS, self.cx, self.cy, self.cz,
            )  # fmt: skip
            self.f, self.g = self.g, self.f

    def lattice_fields(self) -> tuple[np.ndarray, np.ndarray]:
        """Density and velocity (lattice units) of the fluid cells (``all_fluid`` order)."""
        return k.macroscopic(self.f, self.all_fluid, self.cx, self.cy, self.cz)

    def result(
        self, steps: int, seconds: float, converged: bool, mean: _RunningMean | None = None
    ) -> LbmResult:
        rho, u = self.lattice_fields() if mean is None or mean.count == 0 else mean.fields()
        padded = self.layout.shape
        velocity = np.zeros(padded + (3,), dtype=np.float32)
        pressure = np.full(padded, np.nan, dtype=np.float32)
        idx = np.unravel_index(self.layout.stored, padded)
        velocity[idx] = u * self.setup.velocity_scale
        pressure[idx] = (rho - 1.0) / 3.0 * self.setup.pressure_scale
        inner = (slice(1, -1),) * 3
        mlups = self.fluid_cells * steps / seconds / 1e6 if seconds > 0 else 0.0
        averaged = 0 if mean is None or mean.count == 0 else mean.steps
        return LbmResult(
            velocity[inner], pressure[inner], steps, mlups, converged, self.fluid_cells, self.setup, averaged,
            self.layout.memory_bytes, self.layout.box_memory_bytes,
        )  # fmt: skip


class _RunningMean:
    """Mean density and mass-weighted (Favre) mean velocity, mean(ρu) / mean(ρ), over the
    samples added (one per check of a run): then the mean fields carry exactly the mean mass
    flux, which mean(ρ)·mean(u) misses by the covariance of a compressible lattice's density
    and velocity swings (0.4 % of the flow on the sample's pulsing run)."""

    def __init__(self) -> None:
        self.count, self.steps = 0, 0
        self._rho: np.ndarray | None = None
        self._momentum: np.ndarray | None = None

    def add(self, rho: np.ndarray, u: np.ndarray, steps: int) -> None:
        momentum = rho[:, None].astype(np.float64) * u
        if self._rho is None or self._momentum is None:
            self._rho, self._momentum = rho.astype(np.float64), momentum
        else:
            self._rho += rho
            self._momentum += momentum
        self.count += 1
        self.steps += steps

    def fields(self) -> tuple[np.ndarray, np.ndarray]:
        assert self._rho is not None and self._momentum is not None
        return self._rho / self.count, self._momentum / self._rho[:, None]


def run(
    mask: np.ndarray,
    setup: LbmSetup,
    steps: int | None = None,
    *,
    axis: int = 2,
    inlet_profile: InletProfile = "plug",
    boundaries: list[OpenBoundary] | None = None,
    tolerance: float = 1e-5,
    check_every: int = 100,
    max_steps: int = 200_000,
    ramp_steps: int = 0,
    control: Callable[[LbmSolver], None] | None = None,
    average_last: float = 0.0,
    progress: Progress | None = None,
) -> LbmResult:
    """Run the flow in the fluid ``mask``: between ``boundaries``, or by default with the inlet at
    index 0 along ``axis`` and the outlet at the last index (:func:`box_boundaries`).

    With ``steps`` it runs exactly that many steps; otherwise until steady: the relative L2 change
    of the velocity over ``check_every`` steps falls below ``tolerance`` (or ``max_steps``).
    ``progress`` counts steps and may cancel between chunks of ``check_every`` steps.
    ``ramp_steps`` raises the prescribed velocities linearly from 0 over that many steps (an
    impulsive start sends pressure waves that a low-viscosity lattice damps slowly).
    ``control(solver)`` runs after every chunk; it may change ``solver.velocity_gain`` (a factor
    per boundary cell on the prescribed velocity), e.g. to hold a measured flow rate.
    ``average_last`` (0 to 1): a run that ends unsteady at ``max_steps``, or runs a fixed number
    of ``steps``, returns the fields averaged over that final fraction of it (sampled every
    ``check_every`` steps): the usual reading of an unsteady jet, or the last of several cardiac
    cycles; a run that settles returns its last step's fields.
    Raises FlowError if the flow blows up (NaN), naming what to change.
    """
    progress = ensure_progress(progress)
    if not 0.0 <= average_last <= 1.0:
        raise FlowError(f"the averaged fraction of a run must be in [0, 1], not {average_last}")
    solver = LbmSolver(mask, setup, axis, inlet_profile, boundaries=boundaries)
    total = steps if steps is not None else max_steps
    average_from = total - int(average_last * total) if average_last > 0 else total + 1
    mean = _RunningMean()
    progress.start("3D flow", total)
    done, seconds, converged = 0, 0.0, steps is not None
    previous = solver.lattice_fields()[1]
    full_velocity = solver.inlet_velocity.copy()
    while done < total:
        n = min(check_every, total - done)
        ramp = min(1.0, (done + n) / ramp_steps) if ramp_steps > 0 else 1.0
        solver.inlet_velocity[:] = full_velocity * (ramp * solver.velocity_gain)[:, None]
        start = time.perf_counter()
        solver.step(n)
        seconds += time.perf_counter() - start
        done += n
        progress.advance(n)
        rho, current = solver.lattice_fields()
        if done > average_from:
            mean.add(rho, current, n)
        if control is not None:
            control(solver)
        if not np.isfinite(current).all():
            raise FlowError(
                f"the 3D flow became unstable after {done} steps (Reynolds number too high for the grid): "
                "use finer cells, a lower inflow, or turbulence modelling (Smagorinsky constant 0.1)"
            )
        if steps is None and done >= ramp_steps:
            change = np.linalg.norm(current - previous) / max(float(np.linalg.norm(current)), 1e-30)
            previous = current
            if change < tolerance:
                converged = True
                break
    settled = converged and steps is None  # a fixed run is "converged" by definition: not settled
    return solver.result(done, seconds, converged, None if settled else mean)
