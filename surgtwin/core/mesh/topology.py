"""Make each label's voxel set *well-composed*, so that its boundary surface is a manifold.

The boundary of a voxel set is a 2-manifold exactly when no 2x2x2 block holds a
critical configuration (Latecki): two voxels of the set (or of its complement) that
touch only along an edge (a diagonal pair in a 2x2 square), or only at a corner (two
antipodal voxels of a 2x2x2 block with the other six on the other side). Surface Nets
turns such places into edges shared by four triangles or vertices joining two sheets,
which no printer, simulator or ``trimesh.is_watertight`` accepts.

We fix them in the label map rather than in the mesh: every critical block gets the
fewest voxels added to the label that make the block regular (a table over the 256
block patterns). Adding is monotone, so the fix of one label always terminates; the
voxels it takes from a neighbouring label are re-checked in the next round. Working
on the shared label map keeps boundaries between touching labels shared.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

import numpy as np
from scipy import ndimage

# bit b of a block code is voxel (dz, dy, dx) with b = 4 * dz + 2 * dy + dx
_OFFSETS = [(b >> 2 & 1, b >> 1 & 1, b & 1) for b in range(8)]


def _is_critical(code: int) -> bool:
    bits = [(code >> b) & 1 for b in range(8)]
    for axis in range(3):  # the six faces of the block: 2x2 squares with a diagonal pattern
        for side in (0, 1):
            face = [b for b in range(8) if _OFFSETS[b][axis] == side]
            on = [b for b in face if bits[b]]
            if len(on) == 2 and all(_OFFSETS[on[0]][a] != _OFFSETS[on[1]][a] for a in range(3) if a != axis):
                return True
    for value in (0, 1):  # two antipodal voxels alone against the other six
        chosen = [b for b in range(8) if bits[b] == value]
        if len(chosen) == 2 and chosen[0] ^ chosen[1] == 7:
            return True
    return False


@cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """``critical[code]`` and ``fixes[code, n]``: the regularising voxel sets (bit masks) of a
    critical block, smallest first, padded with 0 (up to the smallest size plus one)."""
    critical = np.zeros(256, dtype=bool)
    fixes: list[list[int]] = [[] for _ in range(256)]
    for code in range(256):
        if not _is_critical(code):
            continue
        critical[code] = True
        unset = [b for b in range(8) if not (code >> b) & 1]
        smallest = None
        for size in range(1, len(unset) + 1):
            if smallest is not None and size > smallest + 1:
                break
            for subset in combinations(unset, size):
                mask = sum(1 << b for b in subset)
                if not _is_critical(code | mask):
                    fixes[code].append(mask)
                    smallest = size if smallest is None else smallest
    width = max(len(f) for f in fixes)
    table = np.zeros((256, width), dtype=np.uint8)
    for code, options in enumerate(fixes):
        table[code, : len(options)] = options
    return critical, table


_POPCOUNT = np.array([bin(n).count("1") for n in range(256)], dtype=np.int32)


def _block_codes(mask: np.ndarray) -> np.ndarray:
    """Code of every 2x2x2 block, built pairwise along i, then j, then k (3 passes, not 8)."""
    m = mask.view(np.uint8)
    code = m[:, :, :-1] | (m[:, :, 1:] << np.uint8(1))  # bits 0-1: dx
    code = code[:, :-1] | (code[:, 1:] << np.uint8(2))  # bits 2-3: dy
    return code[:-1] | (code[1:] << np.uint8(4))  # bits 4-7: dz


def critical_blocks(mask: np.ndarray) -> int:
    """How many 2x2x2 blocks of a boolean mask hold a critical configuration."""
    critical, _ = _tables()
    return int(np.count_nonzero(critical[_block_codes(mask)]))


def _codes_at(
    labels: np.ndarray, value: int, blocks: np.ndarray, moved: dict[tuple[int, int, int], int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block codes of ``value``, and bit masks of voxels held by *other* labels and of
    voxels that already changed hands more than once (taking those again feeds a cycle)."""
    code = np.zeros(len(blocks), dtype=np.uint8)
    taken = np.zeros(len(blocks), dtype=np.uint8)
    busy = np.zeros(len(blocks), dtype=np.uint8)
    for b, (dz, dy, dx) in enumerate(_OFFSETS):
        idx = (blocks[:, 0] + dz, blocks[:, 1] + dy, blocks[:, 2] + dx)
        vox = labels[idx]
        code |= (vox == value).view(np.uint8) << np.uint8(b)
        taken |= ((vox != value) & (vox != 0)).view(np.uint8) << np.uint8(b)
        if moved:
            hot = np.array([moved.get(p, 0) > 1 for p in zip(*(i.tolist() for i in idx), strict=True)])
            busy |= hot.view(np.uint8) << np.uint8(b)
    return code, taken, busy


def _blocks_touching(voxels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The (up to 8) 2x2x2 blocks that contain each voxel, as unique block origins."""
    out = np.concatenate([voxels - np.array(off) for off in _OFFSETS])
    limit = np.array(shape) - 2
    out = out[((out >= 0) & (out <= limit)).all(axis=1)]
    return np.unique(out, axis=0)


def _fix_blocks(
    labels: np.ndarray, value: int, blocks: np.ndarray, moved: dict[tuple[int, int, int], int]
) -> tuple[np.ndarray, np.ndarray]:
    """Regularise the critical ones among ``blocks``; return changed voxels and their old labels.

    Of the smallest fixes, the one taking fewest voxels from other labels wins, so that
    two touching labels do not keep stealing the same voxels from each other."""
    critical, fixes = _tables()
    code, taken, busy = _codes_at(labels, value, blocks, moved)
    bad = critical[code]
    if not bad.any():
        return np.empty((0, 3), dtype=np.intp), np.empty(0, dtype=labels.dtype)
    cand = fixes[code[bad]]
    cost = _POPCOUNT[cand & busy[bad, None]] * 256 + _POPCOUNT[cand & taken[bad, None]] * 16 + _POPCOUNT[cand]
    cost[cand == 0] = 1 << 20
    choice = cand[np.arange(len(cand)), cost.argmin(axis=1)]
    origins = blocks[bad]
    picked = [origins[(choice >> b) & 1 == 1] + np.array(off) for b, off in enumerate(_OFFSETS)]
    voxels = np.unique(np.concatenate(picked), axis=0)
    idx = (voxels[:, 0], voxels[:, 1], voxels[:, 2])
    old = labels[idx]
    keep = old != value
    labels[idx] = value
    for p in map(tuple, voxels[keep & (old != 0)].tolist()):
        moved[p] = moved.get(p, 0) + 1
    return voxels[keep], old[keep]


def _initial_blocks(labels: np.ndarray, value: int, box: tuple[slice, ...]) -> np.ndarray:
    critical, _ = _tables()
    where = np.argwhere(critical[_block_codes(labels[box] == value)])
    return where + np.array([s.start for s in box])


def make_well_composed(
    labels: np.ndarray, values: list[int], max_sweeps: int = 40
) -> tuple[dict[int, int], list[int]]:
    """Fix ``labels`` in place (it must have a background border of at least one voxel).

    One full scan per label, then only the blocks around changed voxels are re-checked.
    Returns the voxels added per label and the labels still critical after
    ``max_sweeps`` (the caller meshes those on their own).
    """
    added = {v: 0 for v in values}
    wanted = set(values)
    objects = ndimage.find_objects(labels)
    dirty: dict[int, np.ndarray] = {}
    moved: dict[tuple[int, int, int], int] = {}  # voxels taken from another label, and how often
    for value in values:
        if value > len(objects) or objects[value - 1] is None:
            continue
        box = tuple(
            slice(max(s.start - 1, 0), min(s.stop, n - 1))
            for s, n in zip(objects[value - 1], labels.shape, strict=True)
        )
        dirty[value] = _initial_blocks(labels, value, box)
    for _ in range(max_sweeps):
        pending: dict[int, list[np.ndarray]] = {}
        for value, blocks in dirty.items():
            if not len(blocks):
                continue
            voxels, old = _fix_blocks(labels, value, blocks, moved)
            if not len(voxels):
                continue
            added[value] += len(voxels)
            pending.setdefault(value, []).append(voxels)
            for other in np.unique(old):  # the labels that lost voxels must be re-checked there
                if int(other) in wanted:
                    pending.setdefault(int(other), []).append(voxels[old == other])
        if not pending:
            return added, []
        dirty = {v: _blocks_touching(np.concatenate(p), labels.shape) for v, p in pending.items()}
    return added, [v for v in values if critical_blocks(labels == v)]


def well_composed_mask(mask: np.ndarray, max_sweeps: int = 200) -> tuple[np.ndarray, int]:
    """One label alone (no neighbours to disturb): adding voxels always ends regular."""
    labels = np.pad(mask, 1).astype(np.uint8)
    added, _ = make_well_composed(labels, [1], max_sweeps)
    return labels[1:-1, 1:-1, 1:-1].astype(bool), added[1]
