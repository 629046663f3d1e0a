"""Slice geometry from Image Position/Orientation Patient, never from slice-thickness tags.

Sorts frames along the slice normal, measures the steps between them, and reports
missing slices, variable spacing, duplicate positions and gantry tilt (measured from
the vectors, not from the GantryDetectorTilt tag). When the slices do not lie on a
regular grid, :class:`SliceGeometry` says so and the loader resamples, recording it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from surgtwin.core.dicom.inventory import FrameHeader
from surgtwin.core.findings import Finding

# Steps that differ by less than this fraction of the median step (plus an absolute
# floor for rounding in the DS strings) are the same step: 1e-6 jitter never fires.
RELATIVE_STEP_TOLERANCE = 0.01
ABSOLUTE_STEP_TOLERANCE_MM = 1e-3
# Positions closer than this along the normal are the same slice position.
DUPLICATE_TOLERANCE_MM = 1e-3
# Angle between the stacking direction and the slice normal above which slices are tilted;
# below Volume's orthogonality tolerance (1e-4 rad), so an untilted affine is orthogonal.
TILT_TOLERANCE_DEG = 0.005
# A slice off the straight line through the first and last ones by more than this fraction
# of a pixel (plus rounding in the position strings) breaks the plain affine.
SHIFT_TOLERANCE_PIXELS = 0.05
SHIFT_TOLERANCE_MM = 0.01
# Orientation cosines that agree to this are the same orientation.
ORIENTATION_TOLERANCE = 1e-4


@dataclass
class SliceGeometry:
    frames: list[FrameHeader]  # sorted along the normal, duplicates removed
    positions_mm: np.ndarray  # distance of each frame along the normal
    row_cosine: np.ndarray
    column_cosine: np.ndarray
    normal: np.ndarray
    pixel_spacing: tuple[float, float]  # (between rows, between columns)
    step_mm: float  # the regular step (median), or the slice thickness for 1 slice
    tilt_deg: float = 0.0
    shifted: bool = False  # some slices lie off the line through the first and last
    regular: bool = True  # a plain affine describes the slices exactly
    findings: list[Finding] = field(default_factory=list)
    dropped: list[FrameHeader] = field(default_factory=list)  # duplicate positions left out

    @property
    def dimensions(self) -> tuple[int, int, int]:
        first = self.frames[0]
        return (first.columns, first.rows, len(self.frames))

    @property
    def spacing(self) -> tuple[float, float, float]:
        return (self.pixel_spacing[1], self.pixel_spacing[0], self.step_mm)

    def acquired_affine(self) -> np.ndarray:
        """ijk -> LPS of the slices as acquired (sheared when tilted).

        Exact only when ``regular``; the loader resamples otherwise.
        """
        first = self.frames[0]
        affine = np.eye(4)
        affine[:3, 0] = self.row_cosine * self.pixel_spacing[1]
        affine[:3, 1] = self.column_cosine * self.pixel_spacing[0]
        assert first.position is not None
        if len(self.frames) > 1:
            last = self.frames[-1].position
            assert last is not None
            affine[:3, 2] = (last - first.position) / (len(self.frames) - 1)
        else:
            affine[:3, 2] = self.normal * self.step_mm
        affine[:3, 3] = first.position
        return affine


def same_orientation(a: FrameHeader, b: FrameHeader) -> bool:
    if a.row_cosine is None or b.row_cosine is None:
        return a.row_cosine is None and b.row_cosine is None
    assert a.column_cosine is not None and b.column_cosine is not None
    return bool(
        np.all(np.abs(a.row_cosine - b.row_cosine) < ORIENTATION_TOLERANCE)
        and np.all(np.abs(a.column_cosine - b.column_cosine) < ORIENTATION_TOLERANCE)
    )


def _sort_key(frame: FrameHeader, normal: np.ndarray) -> tuple[float, int, str, int]:
    # Ties broken by content identifiers, never by file name, so order is reproducible.
    assert frame.position is not None
    return (float(frame.position @ normal), frame.instance_number, frame.sop_instance_uid, frame.frame_index)


def analyse(frames: list[FrameHeader]) -> SliceGeometry:
    """Sort and measure one group of same-orientation, same-size frames."""
    first = frames[0]
    normal = first.normal
    if normal is None or first.row_cosine is None or first.column_cosine is None:
        raise ValueError("no ImageOrientationPatient")
    if first.pixel_spacing is None:
        raise ValueError("no PixelSpacing")
    if any(f.position is None for f in frames):
        raise ValueError("no ImagePositionPatient on some frames")
    ordered = sorted(frames, key=lambda f: _sort_key(f, normal))
    positions = np.array([float(f.position @ normal) for f in ordered])

    findings: list[Finding] = []
    kept, kept_pos, dropped = [ordered[0]], [positions[0]], []
    for frame, pos in zip(ordered[1:], positions[1:], strict=True):
        if abs(pos - kept_pos[-1]) < DUPLICATE_TOLERANCE_MM:
            dropped.append(frame)
        else:
            kept.append(frame)
            kept_pos.append(pos)
    if dropped:
        findings.append(
            Finding(
                "duplicate_slices",
                f"{len(dropped)} frame(s) repeat a slice position already present; "
                "the first of each (lowest instance number) is used",
            )
        )
    pos_arr = np.array(kept_pos)
    geometry = SliceGeometry(
        frames=kept,
        positions_mm=pos_arr,
        row_cosine=first.row_cosine,
        column_cosine=first.column_cosine,
        normal=normal,
        pixel_spacing=first.pixel_spacing,
        step_mm=first.slice_thickness or 1.0,
        findings=findings,
        dropped=dropped,
    )
    if len(kept) == 1:
        geometry.findings.append(
            Finding(
                "single_slice",
                f"only one slice: its thickness tag gives the third dimension ({geometry.step_mm:g} mm)",
                severity="info",
            )
        )
        return geometry
    _measure_steps(geometry)
    _measure_tilt(geometry)
    _measure_shifts(geometry)
    return geometry


def _measure_steps(geometry: SliceGeometry) -> None:
    steps = np.diff(geometry.positions_mm)
    median = float(np.median(steps))
    tolerance = RELATIVE_STEP_TOLERANCE * median + ABSOLUTE_STEP_TOLERANCE_MM
    geometry.step_mm = median
    off = np.abs(steps - median) > tolerance
    if not off.any():
        return
    geometry.regular = False
    multiples = steps[off] / median
    whole = np.abs(multiples - np.round(multiples)) * median <= tolerance
    if np.all(whole) and np.all(np.round(multiples) >= 2):
        missing = int(np.sum(np.round(multiples) - 1))
        where = ", ".join(f"after {geometry.positions_mm[i]:.2f} mm" for i in np.flatnonzero(off)[:5])
        geometry.findings.append(
            Finding(
                "missing_slices",
                f"{missing} slice(s) missing from a regular {median:g} mm series ({where} "
                "along the slice normal)",
            )
        )
    else:
        geometry.findings.append(
            Finding(
                "variable_spacing",
                f"slice spacing varies from {steps.min():.3f} to {steps.max():.3f} mm "
                f"(median {median:.3f} mm)",
            )
        )


def _measure_tilt(geometry: SliceGeometry) -> None:
    first, last = geometry.frames[0].position, geometry.frames[-1].position
    assert first is not None and last is not None
    stack = last - first
    along_normal = float(stack @ geometry.normal)
    # Signed angle in the plane of the normal and the column direction: gantry tilt
    # rotates about the row (left-right) axis.
    sideways = float(stack @ geometry.column_cosine)
    off_plane = float(stack @ geometry.row_cosine)
    angle = math.degrees(math.atan2(math.hypot(sideways, off_plane), abs(along_normal)))
    if angle <= TILT_TOLERANCE_DEG:
        return
    sign = -1.0 if sideways * along_normal < 0 else 1.0
    geometry.tilt_deg = sign * angle
    geometry.regular = False
    tag = geometry.frames[0].gantry_tilt_tag
    said = f"; GantryDetectorTilt tag: {tag:+g}" if tag is not None else ""
    geometry.findings.append(
        Finding(
            "gantry_tilt",
            f"slices are tilted by {geometry.tilt_deg:+.2f} degrees against their stacking "
            f"direction (gantry tilt, measured from the positions{said})",
        )
    )


def _measure_shifts(geometry: SliceGeometry) -> None:
    """Find slices displaced in-plane from the straight line through the first and last."""
    positions = np.array([f.position for f in geometry.frames])
    d = geometry.positions_mm
    fraction = (d - d[0]) / (d[-1] - d[0])
    expected = positions[0] + np.outer(fraction, positions[-1] - positions[0])
    off = np.linalg.norm(positions - expected, axis=1)
    tolerance = SHIFT_TOLERANCE_PIXELS * min(geometry.pixel_spacing) + SHIFT_TOLERANCE_MM
    if off.max() <= tolerance:
        return
    worst = int(np.argmax(off))
    geometry.shifted = True
    geometry.regular = False
    geometry.findings.append(
        Finding(
            "inconsistent_positions",
            f"{int(np.sum(off > tolerance))} slice(s) lie off the line through the first and last "
            f"slice (up to {off[worst]:.2f} mm, at {d[worst]:.2f} mm along the normal)",
        )
    )
