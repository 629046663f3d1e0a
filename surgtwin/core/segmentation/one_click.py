"""One-click twin: skin, bone, lungs, airways and contrast-filled vessels from a CT.

Everything works in HU with fixed, recorded parameters (no learned model), so the
result is reproducible and explainable. Topology is decided on a ~1.5 mm coarse grid
and boundaries are refined at full resolution (see ``one_click_ops``). Masks never
overlap; priority is airways > lungs > vessels > bone > skin, and ``skin`` is the rest
of the body (everything inside the skin surface that is none of the other segments).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from surgtwin.core.errors import SegmentationError
from surgtwin.core.progress import Progress, ensure_progress
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.one_click_air import (
    AirParameters,
    find_trachea_seed,
    grow_airways,
    lung_components,
)
from surgtwin.core.segmentation.one_click_ops import (
    Grid,
    closing,
    components,
    dilate,
    erode,
    fill_holes,
    largest_component,
    opening,
)
from surgtwin.core.segmentation.one_click_vessels import (
    VesselParameters,
    detect_contrast,
    find_cortex,
    vessel_thresholds,
    vessels_coarse,
)
from surgtwin.core.volume import Volume

SEGMENT_NAMES = ("skin", "bone", "lungs", "airways", "vessels")
TOOL = "one_click_twin"
VERSION = 1


@dataclass(frozen=True)
class TwinParameters:
    coarse_mm: float = 1.5  # block size of the topology grid
    body_hu: float = -400.0
    table_opening_mm: float = 4.0  # the table and thin cushions are opened away
    bone_hu: float = 200.0
    bone_cortex_hu: float = 450.0  # bone components must contain some cortex this bright
    min_cortex_fraction: float = 0.03
    min_bone_ml: float = 2.0
    bone_closing_mm: float = 1.5  # seals vascular foramina so 3D hole filling keeps the marrow
    air: AirParameters = field(default_factory=AirParameters)
    vessels: VesselParameters = field(default_factory=VesselParameters)


@dataclass
class TwinResult:
    masks: dict[str, np.ndarray]  # plain segment name -> bool mask on the volume grid
    parameters: dict[str, Any]  # JSON-ready: every threshold/size/radius, plus measured levels
    skipped: dict[str, str] = field(default_factory=dict)  # segment -> reason
    timings_s: dict[str, float] = field(default_factory=dict)

    def volumes_ml(self, voxel_ml: float) -> dict[str, float]:
        return {name: float(mask.sum()) * voxel_ml for name, mask in self.masks.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return round(float(value), 4)
    return value


def check_ct(volume: Volume) -> np.ndarray:
    """The voxels as HU, or a SegmentationError saying why this is not a CT in HU."""
    modality = (volume.modality or "").upper()
    if modality and modality != "CT":
        raise SegmentationError(
            f"the one-click twin needs a CT in Hounsfield units; "
            f"{volume.name or 'this volume'} is {modality}",
            code="not_ct",
        )
    if volume.units not in ("HU", ""):
        raise SegmentationError(
            f"the one-click twin needs Hounsfield units, the volume is in {volume.units!r}", code="not_hu"
        )
    hu = volume.voxels
    if hu.dtype.kind not in "iuf":
        raise SegmentationError(f"voxels of type {hu.dtype} are not CT numbers", code="not_hu")
    if min(hu.shape) < 3:
        raise SegmentationError(
            f"a volume of {hu.shape[::-1]} voxels is too thin for a twin (need 3 or more slices)"
        )
    if not volume.units:  # files without units (NIfTI): accept only what looks like HU
        lo, hi = np.percentile(hu[:: max(1, hu.shape[0] // 16)], [0.5, 99.5])
        if lo > -500 or lo < -3100 or hi > 4000:
            raise SegmentationError(
                f"the volume's values ({lo:.0f} to {hi:.0f}) do not look like CT Hounsfield units "
                "(air should be near -1000); the one-click twin works on CT only",
                code="not_hu",
            )
    return hu


def _refine(grid: Grid, coarse: np.ndarray, full_threshold: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """Full-resolution mask on ``box``: coarse interior, plus thresholded voxels in a one-block band."""
    code = dilate(coarse, 1).view(np.uint8) * np.uint8(2) + erode(coarse, 1).view(np.uint8)
    full = grid.expand(code, box)
    return (full + full_threshold.view(np.uint8)) >= 3


class _Clock:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(now - self._t, 4)
        self._t = now
        self.progress.advance()  # also raises CancelledError when asked to stop


def one_click_twin(
    volume: Volume, progress: Progress | None = None, parameters: TwinParameters | None = None
) -> TwinResult:
    """Skin, bone, lungs/airways (when present) and vessels (when contrast is present) of a CT."""
    p = parameters or TwinParameters()
    progress = ensure_progress(progress)
    progress.start("one-click twin", 6)
    hu = check_ct(volume)
    clock = _Clock(progress)
    spacing_kji = volume.spacing[::-1]
    grid = Grid.for_spacing(hu.shape, spacing_kji, p.coarse_mm)
    full_ml = float(np.prod(spacing_kji)) / 1000.0
    whole = tuple(slice(0, n) for n in hu.shape)
    hu_c = grid.shrink_mean(hu)[: -(-hu.shape[0] // grid.factors[0]), :, :]
    measured: dict[str, Any] = {"coarse_factors_kji": list(grid.factors)}
    skipped: dict[str, str] = {}

    # --- body: largest dense component after opening the table away, holes filled.
    dense_c = hu_c > p.body_hu
    r_table = grid.voxels_for_mm(p.table_opening_mm)
    core = largest_component(opening(dense_c, r_table))
    if not core.any():
        raise SegmentationError(
            f"no body found: nothing denser than {p.body_hu:.0f} HU survives "
            f"a {p.table_opening_mm} mm opening",
            code="no_body",
        )
    body_c = fill_holes(dilate(core, r_table + 1) & dense_c)
    body = _refine(grid, body_c, hu > p.body_hu, whole)
    clock.lap("body")

    # --- lungs (air inside the body with parenchyma HU) and the airway tree.
    lungs_c = lung_components(hu_c, body_c, grid, p.air)
    lungs = np.zeros_like(body)
    airways = np.zeros_like(body)
    if not lungs_c.any():
        skipped["lungs"] = "no lungs in the field of view (no air-filled parenchyma inside the body)"
        skipped["airways"] = "no lungs in the field of view"
    else:
        box = grid.full_box(lungs_c, 1)
        assert box is not None
        lungs[box] = _refine(grid, lungs_c, hu[box] < p.air.air_hu, box)
    clock.lap("lungs")
    if lungs_c.any():
        superior_high_k = bool(volume.ijk_to_lps[2, 2] > 0)
        seed_c = find_trachea_seed(hu_c, body_c, lungs_c, grid, superior_high_k, p.air)
        if seed_c is None:
            skipped["airways"] = "no trachea found (the scan may start below the carina)"
        else:
            seed = _darkest_in_block(hu, grid, seed_c)
            box = _airway_box(grid, lungs_c, seed_c)
            grown, used = grow_airways(hu, seed, box, full_ml, p.air)
            airways[box] = grown
            airways &= body
            measured["trachea_seed_kji"] = list(seed)
            measured["airway_threshold_hu"] = used
    lungs &= body & ~airways
    clock.lap("airways")

    # --- vessels, only when a contrast blood pool is found.
    cortex = find_cortex(hu_c, body_c, grid, p.vessels)
    measured["cortex_hu"] = cortex.hu
    level, sentence = detect_contrast(hu_c, body_c, cortex, grid, p.vessels)
    if level is not None and level + p.vessels.cortex_margin_hu > cortex.hu:
        # Arterial phase: blood as bright as thin cortex; cortex must be brighter than blood.
        cortex = find_cortex(hu_c, body_c, grid, p.vessels, blood_hu=level)
        measured["cortex_hu"] = cortex.hu
        level, sentence = detect_contrast(hu_c, body_c, cortex, grid, p.vessels)
    measured["contrast"] = sentence
    vessels_c = np.zeros_like(body_c)
    vessels = np.zeros_like(body)
    cortex_hu = p.bone_cortex_hu
    if level is None:
        skipped["vessels"] = sentence
    else:
        low, high = vessel_thresholds(level, cortex, p.vessels)
        measured.update(aorta_level_hu=level, vessel_low_hu=low, vessel_high_hu=high)
        cortex_hu = max(cortex_hu, high)
        vessels_c = vessels_coarse(hu_c, body_c, grid, level, cortex, p.vessels)
        box = grid.full_box(vessels_c, 1)
        if box is None:
            skipped["vessels"] = f"{sentence}, but no vessel larger than {p.vessels.min_component_ml} mL"
        else:
            vhu = hu[box]
            vessels[box] = _refine(grid, vessels_c, (vhu >= low) & (vhu <= high), box)
            vessels &= body & ~lungs & ~airways
    clock.lap("vessels")

    # --- bone: dense components that hold some cortex, marrow filled in 3D.
    bone = _bone(hu, hu_c, grid, body_c & ~vessels_c & ~lungs_c, cortex_hu, p, measured)
    bone &= body & ~vessels & ~lungs & ~airways
    clock.lap("bone")

    skin = body & ~(bone | lungs | airways | vessels)
    masks = {"skin": skin, "bone": bone, "lungs": lungs, "airways": airways, "vessels": vessels}
    for name in list(masks):
        if name in skipped:
            del masks[name]
        elif not masks[name].any():
            skipped[name] = f"nothing found for {name}"
            del masks[name]
    measured["volumes_ml"] = {n: float(m.sum()) * full_ml for n, m in masks.items()}
    clock.lap("skin")
    record: dict[str, Any] = _jsonable({"tool": TOOL, "version": VERSION, **asdict(p), "measured": measured})
    return TwinResult(masks=masks, parameters=record, skipped=skipped, timings_s=clock.timings)


def _bone(
    hu: np.ndarray,
    hu_c: np.ndarray,
    grid: Grid,
    allowed_c: np.ndarray,
    cortex_hu: float,
    p: TwinParameters,
    measured: dict[str, Any],
) -> np.ndarray:
    dense = allowed_c & (hu_c > p.bone_hu)
    labels, sizes = components(dense)
    n = len(sizes)
    if n <= 1:
        return np.zeros(hu.shape, dtype=bool)
    cortex = grid.shrink_any(hu > cortex_hu)[: hu_c.shape[0]]
    fraction = np.bincount(labels[cortex], minlength=n)[:n] / np.maximum(sizes, 1)
    keep = (sizes * grid.voxel_ml >= p.min_bone_ml) & (fraction >= p.min_cortex_fraction)
    keep[0] = False
    measured["bone_components"] = int(keep.sum())
    kept = keep[labels]
    filled = fill_holes(closing(kept, grid.voxels_for_mm(p.bone_closing_mm)), open_along_k=True) & allowed_c
    out = np.zeros(hu.shape, dtype=bool)
    box = grid.full_box(filled, 1)
    if box is not None:
        out[box] = _refine(grid, filled, hu[box] > p.bone_hu, box)
    return out


def _darkest_in_block(hu: np.ndarray, grid: Grid, seed_c: tuple[int, int, int]) -> tuple[int, int, int]:
    """A full-grid voxel in the coarse seed block that is surely air."""
    lo = [c * f for c, f in zip(seed_c, grid.factors, strict=True)]
    block = hu[
        lo[0] : lo[0] + grid.factors[0], lo[1] : lo[1] + grid.factors[1], lo[2] : lo[2] + grid.factors[2]
    ]
    k, j, i = np.unravel_index(int(np.argmin(block)), block.shape)
    return (lo[0] + int(k), lo[1] + int(j), lo[2] + int(i))


def _airway_box(grid: Grid, lungs_c: np.ndarray, seed_c: tuple[int, int, int]) -> tuple[slice, ...]:
    region = lungs_c.copy()
    region[seed_c] = True
    ks = np.flatnonzero(region.any(axis=(1, 2)))
    region[ks[0] : ks[-1] + 1, seed_c[1], seed_c[2]] = True  # the trachea's slab between seed and lungs
    box = grid.full_box(region, 2)
    assert box is not None
    return box


def to_segmentation(
    result: TwinResult, volume: Volume, reference_volume_id: str | None = None
) -> Segmentation:
    """A Segmentation on the volume's grid with one segment per mask, provenance recorded."""
    segmentation = Segmentation.empty_like(
        volume, name="One-click twin", reference_volume_id=reference_volume_id
    )
    for name in SEGMENT_NAMES:
        mask = result.masks.get(name)
        if mask is None:
            continue
        if mask.shape != segmentation.labels.shape:
            raise SegmentationError(
                f"mask {name!r} has shape {mask.shape}, the volume {segmentation.labels.shape}"
            )
        label = segmentation.add_segment(
            name, provenance={"tool": TOOL, "version": VERSION, "parameters": result.parameters}
        )
        segmentation.labels[mask] = label
    segmentation.provenance = {
        "tool": TOOL,
        "version": VERSION,
        "parameters": result.parameters,
        "skipped": dict(result.skipped),
        "timings_s": dict(result.timings_s),
    }
    return segmentation
