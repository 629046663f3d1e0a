"""Index headers of everything under the given paths and group them into series.

Headers only, read in parallel worker processes for large folders. A DICOM series
that mixes orientations, sizes, image types or acquisitions is split into parts
``<SeriesInstanceUID>#<n>``, each with the reason it was split.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from pydicom.uid import UID

from surgtwin.core.dicom.geometry import DUPLICATE_TOLERANCE_MM, analyse, same_orientation
from surgtwin.core.dicom.headers import read_headers
from surgtwin.core.dicom.inventory import FrameHeader, Inventory, Patient, Series, SkippedFile, Study
from surgtwin.core.dicom.pixels import decoder_available
from surgtwin.core.dicom.sources import SourceFile, iter_sources
from surgtwin.core.findings import Finding
from surgtwin.core.progress import Progress, ensure_progress

# Below this many files, worker processes cost more than they save (benchmarks/index_headers.py:
# on 2 cores, ~1,000 files index in 0.8 s serially and no faster in parallel).
PARALLEL_MIN_FILES = 2000
CHUNK_FILES = 64
NOT_VOLUME_MODALITIES = {
    "SEG": "a DICOM segmentation, not an image volume (import it as a segmentation)",
    "RTSTRUCT": "RT structure set, not an image volume",
    "PR": "presentation state, not an image volume",
    "SR": "structured report, not an image volume",
}


def _worker_init() -> None:
    # Ctrl-C is the parent's to handle (it cancels cleanly); workers just stop with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read_chunk(sources: list[SourceFile]) -> list[list[FrameHeader] | SkippedFile]:
    return [read_headers(s) for s in sources]


def _read_all(sources: list[SourceFile], progress: Progress) -> list[list[FrameHeader] | SkippedFile]:
    progress.start("reading headers", len(sources))
    workers = min(os.cpu_count() or 1, max(1, len(sources) // PARALLEL_MIN_FILES * 2))
    if workers <= 1:
        results = []
        for source in sources:
            results.append(read_headers(source))
            progress.advance()
        return results
    chunks = [sources[i : i + CHUNK_FILES] for i in range(0, len(sources), CHUNK_FILES)]
    results = []
    # spawned, not forked: the caller may be the app, whose Qt, VTK and OpenMP threads hold
    # locks a forked child would inherit locked
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init) as pool:
        try:
            for chunk, chunk_results in zip(chunks, pool.map(_read_chunk, chunks), strict=True):
                results.extend(chunk_results)
                progress.advance(len(chunk))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results


def scan(paths: Iterable[Path | str], progress: Progress | None = None) -> Inventory:
    """Index every file under ``paths`` (folders, zips, DICOMDIRs, single files)."""
    progress = ensure_progress(progress)
    inventory = Inventory()
    sources = list(iter_sources([Path(p) for p in paths], inventory.skipped))
    frames: list[FrameHeader] = []
    for result in _read_all(sources, progress):
        if isinstance(result, SkippedFile):
            inventory.skipped.append(result)
        else:
            frames.extend(result)
    _build_tree(inventory, frames)
    return inventory


def _series_key(frame: FrameHeader) -> str:
    """SeriesInstanceUID; without one, files are grouped only with their folder neighbours
    of the same Frame of Reference (never merged across folders or patients)."""
    if frame.series_uid:
        return frame.series_uid
    folder = str(Path(frame.display.split("!", 1)[0]).parent)
    digest = hashlib.sha1(
        f"{folder}|{frame.frame_of_reference_uid}|{frame.patient_name}".encode()
    ).hexdigest()
    return f"no-uid-{digest[:12]}"


def _build_tree(inventory: Inventory, frames: list[FrameHeader]) -> None:
    by_series: dict[tuple[str, str, str], list[FrameHeader]] = defaultdict(list)
    for f in frames:
        by_series[(f.patient_id, f.study_uid, _series_key(f))].append(f)
    patients: dict[str, Patient] = {}
    studies: dict[tuple[str, str], Study] = {}
    for (pid, study_uid, _), members in sorted(by_series.items(), key=lambda kv: _series_order(kv[1])):
        first = members[0]
        patient = patients.setdefault(pid, Patient(pid, first.patient_name))
        if (pid, study_uid) not in studies:
            studies[(pid, study_uid)] = Study(study_uid, first.study_description, first.study_date)
            patient.studies.append(studies[(pid, study_uid)])
        studies[(pid, study_uid)].series.extend(split_series(members, _series_key(first)))
    inventory.patients = list(patients.values())


def _series_order(members: list[FrameHeader]) -> tuple[int, str]:
    return (members[0].series_number, members[0].series_uid)


def _orientation_key(frame: FrameHeader, reps: list[FrameHeader]) -> int:
    for n, rep in enumerate(reps):
        if same_orientation(frame, rep):
            return n
    reps.append(frame)
    return len(reps) - 1


def split_series(frames: list[FrameHeader], uid: str | None = None) -> list[Series]:
    """Split one SeriesInstanceUID into groups that can each be one volume."""
    reps: list[FrameHeader] = []
    criteria: list[tuple[str, Callable[[FrameHeader], Hashable]]] = [
        ("image size", lambda f: (f.rows, f.columns)),
        ("orientation", lambda f: _orientation_key(f, reps)),
        ("pixel spacing", lambda f: tuple(round(s, 4) for s in f.pixel_spacing or (0, 0))),
        ("image type", lambda f: f.image_type[:3]),
        ("colour format", lambda f: (f.samples_per_pixel, f.photometric)),
        ("stack", lambda f: f.stack_id),
    ]
    groups: list[tuple[list[FrameHeader], list[str]]] = [(frames, [])]
    for label, key in criteria:
        groups = [
            (part, reasons + ([label] if len(parts) > 1 else []))
            for g, reasons in groups
            for parts in [_partition(g, key)]
            for part in parts
        ]
    # Duplicate positions that an acquisition, echo or time index tells apart are separate volumes.
    for label, key in [
        ("acquisition", lambda f: f.acquisition_number),
        ("echo", lambda f: f.echo),
        ("temporal position", lambda f: f.temporal_position),
    ]:
        groups = [
            (part, reasons + ([label] if len(parts) > 1 else []))
            for g, reasons in groups
            for parts in [_partition(g, key) if _has_duplicates(g) else [g]]
            for part in parts
        ]
    uid = uid or frames[0].series_uid
    series = []
    for n, (members, reasons) in enumerate(groups, start=1):
        s = Series(
            uid=uid if len(groups) == 1 else f"{uid}#{n}",
            series_instance_uid=uid,
            modality=members[0].modality,
            description=members[0].series_description,
            number=members[0].series_number,
            frames=members,
            split_reason=("differs in " + ", ".join(reasons)) if reasons else None,
        )
        if not frames[0].series_uid:
            s.findings.append(
                Finding(
                    "missing_series_uid",
                    "the files carry no SeriesInstanceUID; "
                    "they were grouped by folder and Frame of Reference",
                )
            )
        _assess(s)
        series.append(s)
    return series


def _partition(frames: list[FrameHeader], key: Callable[[FrameHeader], Hashable]) -> list[list[FrameHeader]]:
    parts: dict[Hashable, list[FrameHeader]] = {}
    for f in frames:
        parts.setdefault(key(f), []).append(f)
    # Order parts by their lowest instance number, never by dict/file order.
    return sorted(parts.values(), key=lambda p: min((f.instance_number, f.sop_instance_uid) for f in p))


def _has_duplicates(frames: list[FrameHeader]) -> bool:
    normal = frames[0].normal
    if normal is None or any(f.position is None for f in frames):
        return False
    positions = np.sort([float(f.position @ normal) for f in frames])
    return bool(np.any(np.diff(positions) < DUPLICATE_TOLERANCE_MM))


def _assess(series: Series) -> None:
    """Decide whether the series can be a volume; analyse its geometry if so."""
    first = series.frames[0]
    if first.modality in NOT_VOLUME_MODALITIES:
        series.loadable = False
        series.not_loadable_reason = NOT_VOLUME_MODALITIES[first.modality]
        return
    if first.samples_per_pixel != 1:
        series.loadable = False
        series.not_loadable_reason = f"colour images ({first.photometric}) are not a volume"
        return
    missing = sorted({f.transfer_syntax for f in series.frames if not decoder_available(f.transfer_syntax)})
    if missing:
        names = ", ".join(f"'{UID(m).name}'" for m in missing)
        example = next(f.display for f in series.frames if f.transfer_syntax in missing)
        series.loadable = False
        series.not_loadable_reason = f"no decoder installed for {names} (e.g. {example})"
        series.findings.append(
            Finding(
                "unsupported_codec",
                f"pixel data compressed as {names}, which no installed decoder reads",
                path=example,
                severity="error",
            )
        )
        return
    try:
        series.geometry = analyse(series.frames)
    except ValueError as exc:
        series.loadable = False
        series.not_loadable_reason = f"no patient geometry ({exc})"
        return
    series.findings.extend(series.geometry.findings)
    if "MOSAIC" in first.image_type:
        series.findings.append(
            Finding(
                "mosaic_not_unpacked",
                "Siemens mosaic: the tiles are loaded as one 2D image, "
                "not unpacked into slices (their geometry is not the image's)",
            )
        )
    if any(f.lossy for f in series.frames):
        series.findings.append(
            Finding(
                "lossy_compression",
                "images were stored with lossy compression; values may differ slightly from the scanner's",
            )
        )
    if first.modality == "CT" and first.rescale_type not in ("HU", ""):
        series.findings.append(
            Finding("not_hounsfield", f"CT values are in '{first.rescale_type}', not Hounsfield units")
        )
