"""Small, fast mask operations for the one-click twin (numpy views + SimpleITK).

Topology (components, holes, openings) is decided on a coarse grid of about 1.5 mm
blocks, which is 4-8x fewer voxels than a thin-slice CT; boundaries are then refined on
the full grid with the plain HU threshold, but only in a one-block band around the
coarse boundary (``refine``): the interior is painted block-wise and only the band's
voxels are read and thresholded, so the coarse grid costs no surface accuracy and the
full grid is touched about once per segment. Morphology with radius r uses r iterations
of the 6-neighbour cross, done with array slices on the mask's bounding box: on 2 cores
that is ~10x faster than SimpleITK's ball kernels. Full-resolution work never goes
through SimpleITK images (each NumPy<->SimpleITK copy of a 512^2 x 275 CT costs ~0.1 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

Box = tuple[slice, ...]


@dataclass(frozen=True)
class Grid:
    """The coarse grid: ``factors`` (k, j, i) full voxels per coarse voxel.

    A coarse voxel covers a block of full voxels; the last block along an axis may be
    partial, and then reads as if the volume's edge voxels were repeated (edge padding).
    """

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
    def shape(self) -> tuple[int, int, int]:
        """The coarse grid's shape (partial last blocks included)."""
        n, f = self.full_shape, self.factors
        return (-(-n[0] // f[0]), -(-n[1] // f[1]), -(-n[2] // f[2]))

    @property
    def spacing_kji(self) -> np.ndarray:
        return np.array(self.full_spacing_kji) * np.array(self.factors)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing_kji)) / 1000.0

    def voxels_for_mm(self, mm: float) -> int:
        """Cross iterations that reach about ``mm`` in-plane (at least 1)."""
        return max(1, int(round(mm / float(min(self.spacing_kji[1:])))))

    def shrink_mean(self, hu: np.ndarray) -> np.ndarray:
        """Block-mean HU (float32), as SimpleITK's BinShrink of the edge-padded volume gives it:
        rounded half up for integer voxels, plain (double-precision sums) for float voxels.

        Pairwise sums of strided views, one axis at a time, on slabs of ~16 slices so the
        temporaries stay small and are reused: about 3x faster than copying the volume
        into SimpleITK for BinShrink.
        """
        fk, fj, fi = self.factors
        n = float(np.prod(self.factors))
        integer = hu.dtype.kind in "iub"
        # float32 sums of up to 2^8 int16 values are exact; float voxels are summed in double
        acc = np.dtype(np.float32) if integer else np.dtype(np.float64)
        out = np.empty(self.shape, dtype=np.float32)
        step = max(1, 16 // fk)  # coarse slices per slab
        for c0 in range(0, out.shape[0], step):
            c1 = min(out.shape[0], c0 + step)
            slab = _block_sum(hu[c0 * fk : c1 * fk], fk, 0, acc)  # the last slab may hold a partial block
            total = _block_sum(_block_sum(slab, fj, 1, acc), fi, 2, acc)
            if n > 1:
                total = total / n
                if integer:
                    total = np.floor(total + 0.5)
            out[c0:c1] = total
        return out

    def block_indices(self, coarse: np.ndarray, origin: tuple[int, ...] = (0, 0, 0)) -> np.ndarray:
        """Flat indices (n, voxels per block) of the full voxels under the true voxels of ``coarse``.

        ``coarse`` is a mask on the coarse grid, or on a crop of it starting at ``origin``.
        Rows follow ``np.flatnonzero(coarse)``; indices past the volume's end repeat its last
        voxel (edge padding), so every row has the same length. Built as one base index
        per block plus a fixed offset pattern: ~5x faster than broadcasting k, j, i indices.
        """
        (fk, fj, fi), (nk, nj, ni) = self.factors, self.full_shape
        kc, jc, ic = (
            c + o for c, o in zip(np.unravel_index(np.flatnonzero(coarse), coarse.shape), origin, strict=True)
        )
        base = kc * (fk * nj * ni) + jc * (fj * ni) + ic * fi
        dk, dj, di = np.meshgrid(np.arange(fk), np.arange(fj), np.arange(fi), indexing="ij")
        flat = base[:, None] + (dk * (nj * ni) + dj * ni + di).reshape(-1)
        partial = np.zeros(len(base), dtype=bool)
        for c, f, n in ((kc, fk, nk), (jc, fj, nj), (ic, fi, ni)):
            if n % f:
                partial |= c == n // f
        if partial.any():  # blocks in a partial last layer: clip each axis to the volume's edge
            rows = np.flatnonzero(partial)
            ks = np.minimum(kc[rows, None] * fk + np.arange(fk), nk - 1) * (nj * ni)
            js = np.minimum(jc[rows, None] * fj + np.arange(fj), nj - 1) * ni
            is_ = np.minimum(ic[rows, None] * fi + np.arange(fi), ni - 1)
            flat[rows] = (ks[:, :, None, None] + js[:, None, :, None] + is_[:, None, None, :]).reshape(
                len(rows), -1
            )
        return flat

    def expand(self, coarse: np.ndarray, origin: tuple[int, ...] = (0, 0, 0)) -> np.ndarray:
        """A C-contiguous full-grid mask: ``coarse`` (placed at coarse ``origin``) copied onto its blocks.

        Rows are widened along i first (one uint16 write per pair for factor 2), then whole
        rows are broadcast along k and j: ~10x faster than a 6-D broadcast with a short inner loop.
        """
        (fk, fj, fi), (ck, cj, ci) = self.factors, self.shape
        padded = np.zeros((ck * fk, cj * fj, ci * fi), dtype=bool)
        k0, j0, i0 = origin
        k1, j1, i1 = k0 + coarse.shape[0], j0 + coarse.shape[1], i0 + coarse.shape[2]
        if fi == 2:
            rows = (coarse.view(np.uint8).astype(np.uint16) * np.uint16(0x0101)).view(np.uint8).view(bool)
        elif fi > 1:
            rows = np.repeat(coarse, fi, axis=2)
        else:
            rows = coarse
        blocks = padded.reshape(ck, fk, cj, fj, ci * fi)
        blocks[k0:k1, :, j0:j1, :, i0 * fi : i1 * fi] = rows[:, None, :, None, :]
        nk, nj, ni = self.full_shape
        if padded.shape[1:] == (nj, ni):
            return padded[:nk]  # the first nk slices of a C-contiguous array are C-contiguous
        return np.ascontiguousarray(padded[:nk, :nj, :ni])

    def full_box(
        self, coarse: np.ndarray, margin: int = 1, origin: tuple[int, ...] = (0, 0, 0)
    ) -> Box | None:
        """The full-grid bounding box of a coarse mask (plus ``margin`` coarse voxels)."""
        box = bounding_box(coarse, margin)
        if box is None:
            return None
        return tuple(
            slice((s.start + o) * f, min(n, (s.stop + o) * f))
            for s, o, f, n in zip(box, origin, self.factors, self.full_shape, strict=True)
        )


def _block_sum(a: np.ndarray, f: int, axis: int, dtype: np.dtype) -> np.ndarray:
    """Sums of ``f`` neighbours along ``axis`` (in ``dtype``); a partial last block repeats the edge."""
    if f == 1:
        return a
    n = a.shape[axis]
    m, r = divmod(n, f)
    shape = list(a.shape)
    shape[axis] = m + (1 if r else 0)
    out = np.empty(shape, dtype=dtype)

    def take(start: int, stop: int, step: int = 1) -> tuple[slice, ...]:
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, stop, step)
        return tuple(index)

    whole = out[take(0, m)]
    np.add(a[take(0, m * f, f)], a[take(1, m * f, f)], out=whole, dtype=dtype)
    for d in range(2, f):
        whole += a[take(d, m * f, f)]
    if r:
        last = out[take(m, m + 1)]
        np.sum(a[take(m * f, n)], axis=axis, keepdims=True, dtype=dtype, out=last)
        last += (f - r) * a[take(n - 1, n)].astype(dtype)
    return out


def refine(
    grid: Grid,
    coarse: np.ndarray,
    hu: np.ndarray,
    inside: Callable[[np.ndarray], np.ndarray],
    origin: tuple[int, ...] = (0, 0, 0),
) -> np.ndarray:
    """Full-grid mask: the coarse mask's interior, plus ``inside(hu)`` in a one-block band.

    Coarse voxels of ``erode(coarse, 1)`` are wholly inside; in those of
    ``dilate(coarse, 1) - erode(coarse, 1)`` each full voxel is tested with ``inside``;
    the rest is outside. ``hu`` is the full, C-contiguous volume. ``coarse`` may be a crop
    of the coarse grid starting at ``origin`` if it keeps a margin of one voxel around
    the mask (or reaches the grid's edge), so erosion sees the same background.
    """
    inner = erode(coarse, 1)
    band = dilate(coarse, 1)
    band &= ~inner
    out = grid.expand(inner, origin)
    index = grid.block_indices(band, origin)
    if index.size:
        out.reshape(-1)[index] = inside(hu.reshape(-1)[index])
    return out


def bounding_box(mask: np.ndarray, margin: int = 0) -> Box | None:
    k_any = mask.any(axis=(1, 2))
    ks = np.flatnonzero(k_any)
    if ks.size == 0:
        return None
    k0, k1 = int(ks[0]), int(ks[-1]) + 1
    plane = np.any(mask[k0:k1], axis=0)
    js, is_ = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
    extents = ((k0, k1), (int(js[0]), int(js[-1]) + 1), (int(is_[0]), int(is_[-1]) + 1))
    return tuple(
        slice(max(0, lo - margin), min(n, hi + margin))
        for (lo, hi), n in zip(extents, mask.shape, strict=True)
    )


def _worth_cropping(box: Box, shape: tuple[int, ...]) -> bool:
    return int(np.prod([s.stop - s.start for s in box])) < 0.7 * int(np.prod(shape))


def _dilate_inplace(out: np.ndarray, iterations: int) -> None:
    src = np.empty_like(out)
    for _ in range(iterations):
        np.copyto(src, out)
        for axis in range(3):
            n = src.shape[axis]
            if n < 2:
                continue
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
            out[tuple(lo)] |= src[tuple(hi)]
            out[tuple(hi)] |= src[tuple(lo)]


def dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Dilation by the 6-neighbour cross, ``iterations`` times (an octahedron)."""
    box = bounding_box(mask, iterations)
    if box is None:
        return np.zeros(mask.shape, dtype=bool)
    if not _worth_cropping(box, mask.shape):
        out = mask.copy()
        _dilate_inplace(out, iterations)
        return out
    out = np.zeros(mask.shape, dtype=bool)
    sub = mask[box].copy()
    _dilate_inplace(sub, iterations)
    out[box] = sub
    return out


def erode(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Erosion by the 6-neighbour cross; voxels outside the array count as background."""
    box = bounding_box(mask)
    out = np.zeros(mask.shape, dtype=bool)
    if box is None:
        return out
    sub = np.pad(~mask[box], 1, constant_values=True)
    _dilate_inplace(sub, iterations)
    out[box] = ~sub[1:-1, 1:-1, 1:-1]
    return out


def opening(mask: np.ndarray, iterations: int) -> np.ndarray:
    return dilate(erode(mask, iterations), iterations)


def closing(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Closing by the cross; computed on the mask's bounding box (the closing never leaves it)."""
    box = bounding_box(mask)
    out = np.zeros(mask.shape, dtype=bool)
    if box is None:
        return out
    padded = np.pad(mask[box], iterations)  # so that the closing is not cut by the array edge
    grown = padded.copy()
    _dilate_inplace(grown, iterations)
    background = ~grown
    _dilate_inplace(background, iterations)
    out[box] = ~background[(slice(iterations, -iterations),) * 3]
    return out


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected components, labelled 1.. by decreasing size; returns (labels, sizes).

    Labelled on the mask's bounding box only.
    """
    labels = np.zeros(mask.shape, dtype=np.uint32)
    box = bounding_box(mask)
    if box is None:
        return labels, np.zeros(1, dtype=np.int64)
    image = sitk.GetImageFromArray(np.ascontiguousarray(mask[box]).view(np.uint8))
    relabel = sitk.RelabelComponentImageFilter()
    relabel.SortByObjectSizeOn()
    labelled = relabel.Execute(sitk.ConnectedComponent(image, False))
    sizes = np.array([0, *relabel.GetSizeOfObjectsInPixels()], dtype=np.int64)
    labels[box] = sitk.GetArrayViewFromImage(labelled)
    return labels, sizes


def largest_component(mask: np.ndarray) -> np.ndarray:
    labels, sizes = components(mask)
    return labels == 1 if len(sizes) > 1 else np.zeros(mask.shape, dtype=bool)


def fill_holes(mask: np.ndarray, open_along_k: bool = False) -> np.ndarray:
    """Fill background not connected to the array's sides.

    With ``open_along_k`` False the first and last slices are closed off, so a tube
    that leaves through them (the trachea at the top of a chest CT) is still a hole:
    this behaves like slice-by-slice filling for the body, at 3D speed. Works on the
    mask's bounding box (along k too when ``open_along_k``, where that changes nothing).
    """
    box = bounding_box(mask)
    if box is None:
        return mask.copy()
    if not open_along_k:
        box = (slice(0, mask.shape[0]), *box[1:])
    padded = np.pad(mask[box], 1, constant_values=False)
    if not open_along_k:
        padded[0] = padded[-1] = True
        padded[0, 0, :] = padded[0, -1, :] = padded[0, :, 0] = padded[0, :, -1] = False
        padded[-1, 0, :] = padded[-1, -1, :] = padded[-1, :, 0] = padded[-1, :, -1] = False
    # Only the outside's label is needed: no relabelling by size.
    image = sitk.ConnectedComponent(sitk.GetImageFromArray((~padded).view(np.uint8)), False)
    labels = sitk.GetArrayViewFromImage(image)  # valid while ``image`` lives
    outside = labels[1, 0, 0] if not open_along_k else labels[0, 0, 0]
    filled = mask.copy()
    filled[box] |= (labels != outside)[1:-1, 1:-1, 1:-1]
    return filled


def per_label_sum(labels: np.ndarray, weights: np.ndarray | None, count: int) -> np.ndarray:
    flat = labels.ravel()
    w = None if weights is None else weights.ravel()
    return np.bincount(flat, weights=w, minlength=count)[:count]
