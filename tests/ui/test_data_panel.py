"""The data browser: series rows with previews and warnings, choosing a series, drag and drop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from surgtwin.core.commands import AddVolume, History
from surgtwin.core.importer import choose_series
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene
from surgtwin.ui import jobs
from surgtwin.ui.data_panel import GREY, DataPanel
from surgtwin.ui.drop import enable_drop
from tests.ui.test_jobs import BRAIN_MR, RLE_FILE, corrupt_rle_copy


@pytest.fixture(scope="module")
def brain_scan(shared_data) -> jobs.ScanData:
    return jobs.scan_path(shared_data / BRAIN_MR, Progress())


@pytest.fixture
def panel(qtbot) -> DataPanel:
    widget = DataPanel()
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _show(panel: DataPanel, data: jobs.ScanData, scene: Scene | None = None) -> None:
    panel.show_scene(scene or Scene("untitled"), data.inventory, data.findings)
    panel.set_thumbnails(data.thumbnails, data.thumbnail_reasons)


def _double_click(qtbot, panel: DataPanel, uid: str) -> None:
    item = panel.series_item(uid)
    panel.tree.scrollToItem(item)
    center = panel.tree.visualItemRect(item).center()
    QTest.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=center)
    QTest.mouseDClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=center)


def test_series_rows_show_preview_details_and_warnings(panel, brain_scan):
    _show(panel, brain_scan)

    names = panel.series_names()
    assert len(names) == 4 and "AX FSE T2" in names
    t2 = next(s for s in brain_scan.inventory.series if s.description == "AX FSE T2")
    item = panel.series_item(t2.uid)
    assert not item.icon(0).isNull()
    icon = item.icon(0).pixmap(64, 64).toImage()
    greys = {
        icon.pixelColor(x, y).value() for x in range(0, icon.width(), 4) for y in range(0, icon.height(), 4)
    }
    assert len(greys) > 10  # the preview picture, not a flat square
    details = item.text(1)
    assert details.startswith("MR, 55 images, 512×384×55")
    assert "0.43×0.43 mm pixels" in details and "2.5 mm thick" in details
    warnings = [item.child(i) for i in range(item.childCount())]
    missing = [w for w in warnings if "missing" in w.text(0).lower()]
    assert missing and not missing[0].icon(0).isNull()
    assert missing[0].icon(0).actualSize(panel.tree.iconSize()).height() <= 16  # small, unlike previews
    # The row itself names the series and repeats the key numbers (the dock may hide column 2).
    assert item.text(0).splitlines()[0] == "Series AX FSE T2" and "512×384×55" in item.text(0)
    assert missing[0].text(0) == next(f.message for f in t2.findings if f.code == "missing_slices")
    # The import warnings list still shows every finding.
    assert panel.findings.count() == len(brain_scan.findings)


def test_double_click_and_open_button_choose_a_series_that_then_loads(qtbot, panel, brain_scan):
    _show(panel, brain_scan)
    largest = choose_series(brain_scan.inventory, None)
    t2 = next(s for s in brain_scan.inventory.series if s.description == "AX FSE T2")
    assert t2.uid != largest.uid

    with qtbot.waitSignal(panel.series_chosen, timeout=2000) as chosen:
        _double_click(qtbot, panel, t2.uid)
    assert chosen.args == [t2.uid]

    # What the window does with it: load that series, show it as the open one.
    opened = jobs.load_series(brain_scan, chosen.args[0], Progress())
    assert opened.volume.shape_ijk[:2] == t2.geometry.dimensions[:2]
    scene = Scene("case")
    History(scene).execute(AddVolume(opened.volume))
    _show(panel, brain_scan, scene)
    assert panel.series_item(t2.uid).text(1).endswith("— open")
    assert panel.series_item(t2.uid).font(0).bold()
    assert not panel.series_item(largest.uid).font(0).bold()

    assert panel.select_series(largest.uid) and panel.open_button.isEnabled()
    with qtbot.waitSignal(panel.series_chosen, timeout=2000) as chosen:
        QTest.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    assert chosen.args == [largest.uid]
    # A refresh (every scene change rebuilds the tree) keeps the selection.
    _show(panel, brain_scan, scene)
    assert panel.selected_series_uid() == largest.uid


def test_not_loadable_series_are_grey_with_the_reason_and_cannot_be_chosen(qtbot, panel, shared_data):
    data = jobs.scan_path(shared_data / "pydicom_data_subset", Progress())
    _show(panel, data)
    seg = next(s for s in data.inventory.series if s.modality == "SEG")
    item = panel.series_item(seg.uid)
    assert "not loadable: a DICOM segmentation" in item.text(1)
    assert item.foreground(0).color() == GREY
    assert not item.icon(0).isNull() and "no preview" in item.toolTip(0)  # grey placeholder + why

    emitted: list[object] = []
    panel.series_chosen.connect(emitted.append)
    panel.select_series(seg.uid)
    assert not panel.open_button.isEnabled()
    _double_click(qtbot, panel, seg.uid)
    QApplication.processEvents()
    assert emitted == []
    loadable = next(s for s in data.inventory.series if s.loadable)
    assert panel.series_item(loadable.uid).foreground(0).color() != GREY
    # Files that are not DICOM images are listed too, greyed, with their reason.
    assert data.inventory.skipped
    skipped_root = next(
        panel.tree.topLevelItem(i)
        for i in range(panel.tree.topLevelItemCount())
        if panel.tree.topLevelItem(i).text(0) == "Files not read"
    )
    assert skipped_root.childCount() == len(data.inventory.skipped)


def test_an_undecodable_preview_is_a_warning_under_its_series(panel, sample_dicom, shared_data, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(sample_dicom / "dicom", folder)
    bad = corrupt_rle_copy(shared_data / RLE_FILE, folder / "corrupt.dcm")
    data = jobs.scan_path(folder, Progress())
    _show(panel, data)

    assert any("Synthetic abdomen" in name for name in panel.series_names())
    bad_series = next(s for s in data.inventory.series if str(bad) in s.files)
    item = panel.series_item(bad_series.uid)
    texts = [item.child(i).text(0) for i in range(item.childCount())]
    assert any("cannot be decoded" in t and str(bad) in t for t in texts)
    assert "no preview: the middle image cannot be decoded" in item.toolTip(0)
    good = next(s for s in data.inventory.series if s is not bad_series)
    good_item = panel.series_item(good.uid)
    assert not any("cannot be decoded" in good_item.child(i).text(0) for i in range(good_item.childCount()))


# --- drag and drop ----------------------------------------------------------------------
def _mime(urls: list[QUrl]) -> QMimeData:
    mime = QMimeData()
    mime.setUrls(urls)
    return mime


def _drag_and_drop(widget: QWidget, mime: QMimeData) -> tuple[bool, bool]:
    """Send a real drag-enter then drop to ``widget``; whether each was accepted."""
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        QPointF(10, 10), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(
        QPointF(10, 10), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    drop.setAccepted(False)
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), drop.isAccepted()


def test_dropping_a_folder_calls_back_with_its_path(qtbot, sample_dicom, tmp_path):
    target = QWidget()
    qtbot.addWidget(target)
    received: list[list[Path]] = []
    enable_drop(target, received.append)
    assert target.acceptDrops()

    folder = sample_dicom / "dicom"
    case = tmp_path / "case.stwin"
    case.write_bytes(b"")
    accepted = _drag_and_drop(target, _mime([QUrl.fromLocalFile(str(folder)), QUrl.fromLocalFile(str(case))]))
    assert accepted == (True, True)
    assert received == [[folder, case]]

    # Dropped onto a child (a view inside the window): Qt hands the drag up to the accepting parent.
    child = QLabel("a view")
    QVBoxLayout(target).addWidget(child)
    assert not child.acceptDrops()
    assert _drag_and_drop(child, _mime([QUrl.fromLocalFile(str(folder))])) == (True, True)
    assert received[-1] == [folder]


def test_drops_without_local_files_are_refused(qtbot):
    target = QWidget()
    qtbot.addWidget(target)
    received: list[list[Path]] = []
    enable_drop(target, received.append)

    remote = _drag_and_drop(target, _mime([QUrl("https://example.org/ct.zip")]))
    text = QMimeData()
    text.setText("/not/a/url")
    plain = _drag_and_drop(target, text)
    assert remote == (False, False) and plain == (False, False)
    assert received == []
