"""Decimation to a triangle budget with fast_simplification (quadric edge collapse).

One pass goes straight to the target face count (computed up front from the budget);
when fast_simplification stops short of it (it does at low aggressiveness), up to
``MAX_PASSES`` passes continue from its output. Edge collapses can pinch thin parts into
non-manifold edges or fold a sheet flat: the result is repaired (numpy first, trimesh
only if that is not enough) and checked as a file reader will see it (coincident
vertices merged). A failed or too lossy result is retried gentler (lower aggressiveness,
then half the reduction at the first aggressiveness); after that the segment keeps its
undecimated mesh. Every attempt is recorded; the caller flags a mesh over its budget.

fast_simplification keeps its mesh in module-global state and holds the GIL: calls
are serialised with a lock, so meshing from several threads stays safe. Holding the GIL
for up to half a second freezes an interactive program's GUI thread, so such a program
calls :func:`use_helper_process` and the collapses run in a separate process (only the
vertex and face arrays travel; a few MB).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import fast_simplification
import numpy as np

from surgtwin.core.mesh.quality import MeshQuality, signed_volume_mm3
from surgtwin.core.mesh.repair import repair_mesh

_SIMPLIFY_LOCK = threading.Lock()
_helper: ProcessPoolExecutor | None = None
HELPER_TIMEOUT_S = 120.0  # far above any real collapse (< 2 s for 1 M faces here)
# A budget is aimed at with this margin, so the faces a repair adds (closed holes) stay under it.
BUDGET_MARGIN = 0.995
MAX_PASSES = 3


def use_helper_process(enabled: bool = True) -> None:
    """Run fast_simplification in a helper process (started now, in the background) so the
    calling process's other threads keep the GIL; ``False`` stops it."""
    global _helper
    with _SIMPLIFY_LOCK:
        if enabled and _helper is None:
            # spawn, not fork: the caller may be a multi-threaded GUI process
            _helper = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
            _helper.submit(_simplify_once, None, None, 0, 0.0)  # start it (imports) ahead of need
        elif not enabled and _helper is not None:
            _helper.shutdown(wait=False, cancel_futures=True)
            _helper = None


def _exit_with_parent(parent_pid: int) -> None:
    """In the helper: leave as soon as the process that started it is gone (even killed)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _simplify_once(
    v: np.ndarray | None, f: np.ndarray | None, target: int, agg: float
) -> tuple[np.ndarray, np.ndarray] | None:
    if v is None or f is None:
        return None  # the warm-up call
    return fast_simplification.simplify(v, f, target_count=target, agg=agg)


def _simplify_call(v: np.ndarray, f: np.ndarray, target: int, agg: float) -> tuple[np.ndarray, np.ndarray]:
    """One fast_simplification call, in the helper process when there is a working one."""
    global _helper
    if _helper is not None:
        try:
            result = _helper.submit(_simplify_once, v, f, target, agg).result(timeout=HELPER_TIMEOUT_S)
            assert result is not None
            return result
        except (BrokenProcessPool, FuturesTimeout):  # it died or hangs: carry on in-process
            _helper.shutdown(wait=False, cancel_futures=True)
            _helper = None
    return fast_simplification.simplify(v, f, target_count=target, agg=agg)


def target_reduction(n_faces: int, budget: int | None, reduction: float | None) -> float:
    """Fraction of faces to remove: from a per-segment budget, a fraction, or both (the larger)."""
    wanted = 0.0
    if budget is not None and n_faces > budget:
        wanted = 1.0 - BUDGET_MARGIN * budget / n_faces
    if reduction is not None:
        wanted = max(wanted, reduction)
    return float(min(max(wanted, 0.0), 0.99))


def decimate(
    vertices: np.ndarray,
    faces: np.ndarray,
    reduction: float,
    aggressiveness: float = 7.0,
    max_volume_change_percent: float = 1.0,
    attempts: int = 3,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], MeshQuality | None]:
    """Remove about ``reduction`` of the faces, keeping a closed manifold mesh.

    Returns the mesh, the record of attempts, and the check of the decimated mesh
    (None when the input came back unchanged)."""
    record: dict[str, Any] = {"requested_reduction": round(reduction, 4), "attempts": []}
    if reduction <= 0.0 or len(faces) < 64:
        record["result"] = "not needed"
        return vertices, faces, record, None
    volume0 = signed_volume_mm3(vertices, faces)
    triangles = np.ascontiguousarray(faces, dtype=np.int32)
    points = np.ascontiguousarray(vertices, dtype=np.float64)
    agg = aggressiveness
    for n in range(attempts):
        target = max(int(round((1.0 - reduction) * len(faces))), 4)
        v, f, passes = _simplify(points, triangles, target, agg)
        v, f, repairs, quality = repair_mesh(v, f)
        change = 100.0 * (quality.volume_mm3 - volume0) / volume0 if volume0 else 0.0
        attempt = {
            "reduction": round(reduction, 4),
            "target_faces": target,
            "aggressiveness": agg,
            "passes": passes,
            "faces": int(len(f)),
            "volume_change_percent": round(change, 3),
            "repairs": repairs,
            "ok": quality.ok,
        }
        record["attempts"].append(attempt)
        if quality.ok and abs(change) <= max_volume_change_percent:
            record["result"] = "decimated"
            return v, f, record, quality
        # first a gentler collapse order at the same budget, then half the reduction (at the
        # first aggressiveness: lower ones stop far short of a large reduction)
        if n == 0:
            agg = max(aggressiveness - 2.0, 1.0)
        else:
            agg = aggressiveness
            reduction = reduction / 2.0
    record["result"] = "skipped: every attempt broke the surface or its volume; kept undecimated"
    return vertices, faces, record, None


def _simplify(
    points: np.ndarray, triangles: np.ndarray, target: int, agg: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """fast_simplification to ``target`` faces, continuing from its own output while it
    stops more than 2 % short (at most ``MAX_PASSES`` passes)."""
    v, f = points, triangles
    passes = 0
    while passes < MAX_PASSES:
        n_before = len(f)
        with _SIMPLIFY_LOCK:
            v, f = _simplify_call(v, f, target, agg)
        v = np.ascontiguousarray(v, dtype=np.float64)
        f = np.ascontiguousarray(f, dtype=np.int32)
        passes += 1
        if len(f) <= 1.02 * target or len(f) >= 0.98 * n_before:  # there, or no progress
            break
    return v, f.astype(np.int64), passes
