"""Small, fast mask operations for the one-click twin (numpy views + SimpleITK).

Topology (components, holes, openings) is decided on a coarse grid of about 1.5 mm
blocks, which is 4-8x fewer voxels than a thin-slice CT; boundaries are then refined on
the full grid with the plain HU threshold inside a one-block band, so the coarse grid
costs no surface accuracy. Morphology with radius r uses r iterations of the 6-neighbour
cross, done with array slices: on 2 cores that is ~10x faster than SimpleITK's ball kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class Grid:
    """The coarse grid: ``factors`` (k, j, i) full voxels per coarse voxel."""

    full_shape: tuple[int, int, int]
    factors: tuple[int, int, int]
    full_spacing_kji: tuple[float, float, float]

    @classmethod
    def for_spacing(cls, shape: tuple[int, int, int], spacing_kji: np.ndarray, target_mm: float) -> Grid:
        factors = tuple(max(1, int(round(target_mm / float(s)))) for s in spacing_kji)
        spacing = tuple(float(s) for s in spacing_kji)
        return cls(
            (shape[0], shape[1], shape[2]),
            (factors[0], factors[1], factors[2]),
            (spacing[0], spacing[1], spacing[2]),
        )

    @property
    def spacing_kji(self) -> np.ndarray:
        return np.array(self.full_spacing_kji) * np.array(self.factors)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing_kji)) / 1000.0

    def voxels_for_mm(self, mm: float) -> int:
        """Cross iterations that reach about ``mm`` in-plane (at least 1)."""
        return max(1, int(round(mm / float(min(self.spacing_kji[1:])))))

    def _padded(self, array: np.ndarray) -> np.ndarray:
        pad = [(0, (-n) % f) for n, f in zip(array.shape, self.factors, strict=True)]
        return np.pad(array, pad, mode="edge") if any(p for _, p in pad) else array

    def shrink_mean(self, hu: np.ndarray) -> np.ndarray:
        """Block-mean HU (float32): the coarse image, partial volume included."""
        if self.factors == (1, 1, 1):
            return hu.astype(np.float32)
        image = sitk.GetImageFromArray(self._padded(hu))  # integer mean is exact enough for HU
        shrunk = sitk.BinShrink(image, self.factors[::-1])  # keep it alive while its view is read
        return sitk.GetArrayViewFromImage(shrunk).astype(np.float32)

    def shrink_any(self, mask: np.ndarray) -> np.ndarray:
        """Coarse voxels that hold at least one true full voxel."""
        if self.factors == (1, 1, 1):
            return mask.copy()
        image = sitk.GetImageFromArray(self._padded(mask).view(np.uint8))
        shrunk = sitk.BinShrink(image, self.factors[::-1])
        return sitk.GetArrayViewFromImage(shrunk) > 0

    def expand(self, coarse: np.ndarray, box: tuple[slice, ...] | None = None) -> np.ndarray:
        """Nearest-neighbour copy of a coarse mask onto the full grid (or onto ``box`` of it)."""
        fk, fj, fi = self.factors
        if box is None:
            box = tuple(slice(0, n) for n in self.full_shape)
        cbox = tuple(slice(s.start // f, -(-s.stop // f)) for s, f in zip(box, self.factors, strict=True))
        c = coarse[cbox]
        if self.factors == (1, 1, 1):
            return c.copy()
        k, j, i = c.shape
        full = np.broadcast_to(c[:, None, :, None, :, None], (k, fk, j, fj, i, fi)).reshape(
            k * fk, j * fj, i * fi
        )
        offs = [s.start - cs.start * f for s, cs, f in zip(box, cbox, self.factors, strict=True)]
        return full[
            offs[0] : offs[0] + box[0].stop - box[0].start,
            offs[1] : offs[1] + box[1].stop - box[1].start,
            offs[2] : offs[2] + box[2].stop - box[2].start,
        ]

    def full_box(self, coarse: np.ndarray, margin: int = 1) -> tuple[slice, ...] | None:
        """The full-grid bounding box of a coarse mask (plus ``margin`` coarse voxels)."""
        box = bounding_box(coarse, margin)
        if box is None:
            return None
        return tuple(
            slice(s.start * f, min(n, s.stop * f))
            for s, f, n in zip(box, self.factors, self.full_shape, strict=True)
        )


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    if not mask.any():
        return None
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out.append(slice(max(0, int(idx[0]) - margin), min(mask.shape[axis], int(idx[-1]) + 1 + margin)))
    return tuple(out)


def dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Dilation by the 6-neighbour cross, ``iterations`` times (an octahedron)."""
    out = mask.copy()
    for _ in range(iterations):
        src = out.copy()
        for axis in range(3):
            n = src.shape[axis]
            if n < 2:
                continue
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
            out[tuple(lo)] |= src[tuple(hi)]
            out[tuple(hi)] |= src[tuple(lo)]
    return out


def erode(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Erosion by the 6-neighbour cross; voxels outside the array count as background."""
    return ~dilate(np.pad(~mask, 1, constant_values=True), iterations)[1:-1, 1:-1, 1:-1]


def opening(mask: np.ndarray, iterations: int) -> np.ndarray:
    return dilate(erode(mask, iterations), iterations)


def closing(mask: np.ndarray, iterations: int) -> np.ndarray:
    padded = np.pad(mask, iterations)  # so that the closing is not cut by the array edge
    closed = ~dilate(~dilate(padded, iterations), iterations)
    return closed[(slice(iterations, -iterations),) * 3]


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected components, labelled 1.. by decreasing size; returns (labels, sizes)."""
    image = sitk.GetImageFromArray(mask.view(np.uint8))
    relabel = sitk.RelabelComponentImageFilter()
    relabel.SortByObjectSizeOn()
    labels = relabel.Execute(sitk.ConnectedComponent(image, False))
    sizes = np.array([0, *relabel.GetSizeOfObjectsInPixels()], dtype=np.int64)
    return sitk.GetArrayFromImage(labels), sizes


def largest_component(mask: np.ndarray) -> np.ndarray:
    labels, sizes = components(mask)
    return labels == 1 if len(sizes) > 1 else np.zeros_like(mask)


def fill_holes(mask: np.ndarray, open_along_k: bool = False) -> np.ndarray:
    """Fill background not connected to the array's sides.

    With ``open_along_k`` False the first and last slices are closed off, so a tube
    that leaves through them (the trachea at the top of a chest CT) is still a hole:
    this behaves like slice-by-slice filling for the body, at 3D speed.
    """
    padded = np.pad(mask, ((1, 1), (1, 1), (1, 1)), constant_values=False)
    if not open_along_k:
        padded[0] = padded[-1] = True
        padded[0, 0, :] = padded[0, -1, :] = padded[0, :, 0] = padded[0, :, -1] = False
        padded[-1, 0, :] = padded[-1, -1, :] = padded[-1, :, 0] = padded[-1, :, -1] = False
    labels, _ = components(~padded)
    outside = labels[1, 0, 0] if not open_along_k else labels[0, 0, 0]
    filled = padded | (labels != outside)
    return filled[1:-1, 1:-1, 1:-1]


def per_label_sum(labels: np.ndarray, weights: np.ndarray | None, count: int) -> np.ndarray:
    flat = labels.ravel()
    w = None if weights is None else weights.ravel()
    return np.bincount(flat, weights=w, minlength=count)[:count]
