"""One-click twin: skin, bone, lungs, airways and contrast-filled vessels from a CT.

Everything works in HU with fixed, recorded parameters (no learned model), so the
result is reproducible and explainable. Topology is decided on a ~1.5 mm coarse grid
and boundaries are refined at full resolution (see ``one_click_ops``). Masks never
overlap; priority is airways > lungs > vessels > bone > skin, and ``skin`` is the rest
of the body (everything inside the skin surface that is none of the other segments).
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    bounding_box,
    closing,
    components,
    dilate,
    fill_holes,
    largest_component,
    opening,
    refine,
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
# Skin is drawn see-through so the organs inside show in 3D (the user can change it).
DEFAULT_OPACITY = {"skin": 0.2}
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


# cos(45 deg): the slice normal must be closer to head-feet than to any other axis.
AXIAL_MIN_COSINE = 0.7071


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
    # The rules walk slices head to foot (trachea at the top, slice-wise hole filling):
    # the slice axis k must run along the patient's long (S-I) axis.
    if abs(float(volume.direction[2, 2])) < AXIAL_MIN_COSINE:
        raise SegmentationError(
            "the one-click twin needs axial slices (slice axis along head-feet); this volume's "
            f"slice axis is {np.round(volume.direction[:, 2], 2).tolist()} in LPS — reformat it "
            "to axial first",
            code="not_axial",
        )
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
    hu = np.ascontiguousarray(check_ct(volume))  # refine() reads it through flat indices
    clock = _Clock(progress)
    spacing_kji = volume.spacing[::-1]
    grid = Grid.for_spacing(hu.shape, spacing_kji, p.coarse_mm)
    full_ml = float(np.prod(spacing_kji)) / 1000.0
    hu_c = grid.shrink_mean(hu)
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
    body = refine(grid, body_c, hu, lambda v: v > p.body_hu)
    clock.lap("body")

    # --- lungs (air inside the body with parenchyma HU) and the airway tree.
    lungs_c = lung_components(hu_c, body_c, grid, p.air)
    # Each segment is empty outside its full-grid box, so combining them touches only that box.
    lungs, lungs_box = _refine_cropped(grid, lungs_c, hu, lambda v: v < p.air.air_hu)
    airways, airways_box = np.zeros(hu.shape, dtype=bool), None  # np.zeros: pages mapped lazily
    if lungs_box is None:
        skipped["lungs"] = "no lungs in the field of view (no air-filled parenchyma inside the body)"
        skipped["airways"] = "no lungs in the field of view"
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
            airways_box = box
            _intersect(airways, body, box)
            measured["trachea_seed_kji"] = list(seed)
            measured["airway_threshold_hu"] = used
            _subtract(lungs, airways, box)
    _intersect(lungs, body, lungs_box)
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
    vessels_c = np.zeros(body_c.shape, dtype=bool)
    vessels, vessels_box = np.zeros(hu.shape, dtype=bool), None
    cortex_hu = p.bone_cortex_hu
    if level is None:
        skipped["vessels"] = sentence
    else:
        low, high = vessel_thresholds(level, cortex, p.vessels)
        measured.update(aorta_level_hu=level, vessel_low_hu=low, vessel_high_hu=high)
        cortex_hu = max(cortex_hu, high)
        vessels_c = vessels_coarse(hu_c, body_c, grid, level, cortex, p.vessels)
        if not vessels_c.any():
            skipped["vessels"] = f"{sentence}, but no vessel larger than {p.vessels.min_component_ml} mL"
        else:
            vessels, vessels_box = _refine_cropped(grid, vessels_c, hu, lambda v: (v >= low) & (v <= high))
            if low <= p.body_hu:  # otherwise inside the body by construction (see _inside_body)
                _intersect(vessels, body, vessels_box)
            _subtract(vessels, lungs, vessels_box)
            _subtract(vessels, airways, vessels_box)
    clock.lap("vessels")

    # --- bone: dense components that hold some cortex, marrow filled in 3D.
    bone, bone_box = _bone(hu, hu_c, grid, body_c & ~vessels_c & ~lungs_c, cortex_hu, p, measured)
    if p.bone_hu <= p.body_hu:  # otherwise inside the body by construction (see _inside_body)
        _intersect(bone, body, bone_box)
    _subtract(bone, vessels, vessels_box)
    _subtract(bone, lungs, lungs_box)
    _subtract(bone, airways, airways_box)
    clock.lap("bone")

    # skin: the rest of the body. The segments are now disjoint subsets of it, so each is
    # removed with an in-place XOR over its own box (no full-volume temporaries).
    skin = body
    for other, other_box in (
        (bone, bone_box),
        (lungs, lungs_box),
        (airways, airways_box),
        (vessels, vessels_box),
    ):
        if other_box is not None:
            view = skin[other_box]
            np.logical_xor(view, other[other_box], out=view)
    masks = {"skin": skin, "bone": bone, "lungs": lungs, "airways": airways, "vessels": vessels}
    counts = {name: int(np.count_nonzero(mask)) for name, mask in masks.items()}
    for name in list(masks):
        if name in skipped:
            del masks[name]
        elif not counts[name]:
            skipped[name] = f"nothing found for {name}"
            del masks[name]
    measured["volumes_ml"] = {n: counts[n] * full_ml for n in masks}
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
) -> tuple[np.ndarray, tuple[slice, ...] | None]:
    dense = allowed_c & (hu_c > p.bone_hu)
    box = bounding_box(dense, 1)  # everything below works on this box (closing and filling stay in it)
    if box is None:
        return np.zeros(hu.shape, dtype=bool), None
    origin = tuple(s.start for s in box)
    dense = dense[box]
    labels, sizes = components(dense)
    n = len(sizes)
    # A block is cortex when at least half its voxels are (as a rounded block mean of the mask).
    block = hu.reshape(-1)[grid.block_indices(dense, origin)]  # rows follow np.flatnonzero(dense)
    cortex = 2 * np.count_nonzero(block > cortex_hu, axis=1) >= block.shape[1]
    cortex_labels = labels.reshape(-1)[np.flatnonzero(dense)[cortex]]
    fraction = np.bincount(cortex_labels, minlength=n)[:n] / np.maximum(sizes, 1)
    keep = (sizes * grid.voxel_ml >= p.min_bone_ml) & (fraction >= p.min_cortex_fraction)
    keep[0] = False
    measured["bone_components"] = int(keep.sum())
    kept = keep[labels]
    filled = fill_holes(closing(kept, grid.voxels_for_mm(p.bone_closing_mm)), open_along_k=True)
    filled &= allowed_c[box]
    return _refine_cropped(grid, filled, hu, lambda v: v > p.bone_hu, origin)


def _refine_cropped(
    grid: Grid,
    coarse: np.ndarray,
    hu: np.ndarray,
    inside: Callable[[np.ndarray], np.ndarray],
    origin: tuple[int, ...] = (0, 0, 0),
) -> tuple[np.ndarray, tuple[slice, ...] | None]:
    """(full-grid mask, its full-grid box or None when empty): ``refine`` on the coarse
    mask's bounding box (one voxel of margin keeps it exact).

    _inside_body: a mask whose coarse mask lies inside the body's and whose threshold
    is stricter than the body's (bone > 200 HU, vessels >= 115 HU vs body > -400 HU) is
    inside the refined body too: its interior blocks are body interior, and its band
    voxels pass the body's threshold wherever the body is refined.
    """
    box = bounding_box(coarse, 1)
    if box is None:
        return np.zeros(hu.shape, dtype=bool), None
    start = tuple(s.start + o for s, o in zip(box, origin, strict=True))
    return refine(grid, coarse[box], hu, inside, start), grid.full_box(coarse[box], 1, start)


def _intersect(mask: np.ndarray, other: np.ndarray, box: tuple[slice, ...] | None) -> None:
    """``mask &= other`` in place, for a mask that is empty outside ``box``."""
    if box is not None:
        view = mask[box]
        np.logical_and(view, other[box], out=view)


def _subtract(mask: np.ndarray, other: np.ndarray, box: tuple[slice, ...] | None) -> None:
    """``mask &= ~other`` in place (one pass, no temporary), for an ``other`` empty outside ``box``."""
    if box is not None:
        view = mask[box]
        np.greater(view, other[box], out=view)  # for booleans, a > b is a & ~b


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
            name,
            provenance={"tool": TOOL, "version": VERSION, "parameters": result.parameters},
            opacity=DEFAULT_OPACITY.get(name, 1.0),
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
