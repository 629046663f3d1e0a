"""The case is never lost or torn: edits during a save, a deferred save when another case is
opened, a half-placed tool point, a recovered case and the start-up path (review findings)."""

from __future__ import annotations

import threading

import numpy as np

from surgtwin.core.case import load_case
from surgtwin.core.commands import History
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.tools import paint
from surgtwin.ui import jobs
from surgtwin.ui.plan_tools import TrajectoryTool
from surgtwin.ui.view_tools import SlicePoint

LONG_MS = 120_000


def _settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.settled, timeout=LONG_MS)
    assert not window.shown_errors, [e.text for e in window.shown_errors]


def _twin(qtbot, window, sample_dicom):
    assert window.open_path(sample_dicom / "dicom")
    _settle(qtbot, window)
    window.one_click_twin()
    _settle(qtbot, window)
    return next(iter(window.scene.segmentations.items()))


def test_an_edit_while_saving_neither_tears_the_file_nor_counts_as_saved(
    qtbot, window, sample_dicom, tmp_path, monkeypatch
):
    seg_id, segmentation = _twin(qtbot, window, sample_dicom)
    release = threading.Event()
    real_save = jobs.save

    def slow_save(scene, path, progress):
        release.wait(30)  # the worker holds here while the user keeps editing
        return real_save(scene, path, progress)

    monkeypatch.setattr(jobs, "save", slow_save)
    case = tmp_path / "c.stwin"
    before = segmentation.labels.copy()
    assert window.save_to(case)
    label = next(iter(segmentation.segments))
    centre = window.volume[1].index_to_lps(np.array([96.0, 96.0, 32.0]))[0]
    assert window.execute(paint(segmentation, label, [centre], 6.0))
    edited = segmentation.labels.copy()
    assert not np.array_equal(edited, before)
    release.set()
    _settle(qtbot, window)
    saved = load_case(case)  # checksums and arrays agree
    assert np.array_equal(saved.get(seg_id).labels, before)  # what was there when Save was pressed
    assert window.tracker.dirty  # the stroke after it is still unsaved


def test_a_save_waiting_for_meshes_is_dropped_when_another_case_is_opened(
    qtbot, window, sample_dicom, tmp_path
):
    _seg_id, segmentation = _twin(qtbot, window, sample_dicom)
    case = tmp_path / "twin.stwin"
    assert window.save_to(case)
    _settle(qtbot, window)
    saved_meshes = len(load_case(case).meshes)
    label = next(iter(segmentation.segments))
    centre = window.volume[1].index_to_lps(np.array([96.0, 96.0, 32.0]))[0]
    assert window.execute(paint(segmentation, label, [centre], 6.0))
    assert window.mesh_updater.pending
    assert window.save_to(case)  # deferred until the meshes are rebuilt
    window._bind(Scene("another case"), History(Scene("unused")))  # the user opened something else
    qtbot.wait(1500)
    _settle(qtbot, window)
    assert len(load_case(case).meshes) == saved_meshes  # the old file was not overwritten


def test_opening_a_case_drops_a_half_placed_trajectory(qtbot, window, sample_dicom):
    _twin(qtbot, window, sample_dicom)
    tool = TrajectoryTool(window)
    window.set_tool(tool)
    normal = np.array([0.0, 0.0, 1.0])
    tool.press(SlicePoint(np.array([500.0, 500.0, 500.0]), "axial", normal))
    tool.release(SlicePoint(np.array([500.0, 500.0, 500.0]), "axial", normal))
    assert window.open_path(sample_dicom / "dicom")
    _settle(qtbot, window)
    point = window.volume[1].index_to_lps(np.array([96.0, 96.0, 32.0]))[0]
    tool.press(SlicePoint(point, "axial", normal))
    tool.release(SlicePoint(point, "axial", normal))
    assert not window.scene.plans  # one click after the switch is an entry, not a trajectory
