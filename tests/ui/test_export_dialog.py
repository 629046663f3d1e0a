"""The export dialog on the real sample: choices, background export, files that reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from surgtwin.core.commands import AddMesh, AddVolume, History
from surgtwin.core.errors import SurgTwinError
from surgtwin.core.importer import load_volume
from surgtwin.core.mesh.extract import extract_meshes
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.io import read_dicom_seg, read_label_map
from surgtwin.core.volume import Volume
from surgtwin.ui.export_dialog import ExportDialog
from surgtwin.ui.worker import Task

MESHED = ("liver", "spleen", "aorta")  # the other sample segments get no mesh (keeps the test fast)


@pytest.fixture(scope="module")
def sample_scene(sample_dicom: Path) -> Scene:
    volume, _ = load_volume(sample_dicom / "dicom")
    truth = sample_dicom / "ground_truth"
    segmentation = read_label_map(truth / "labels.nii.gz", truth / "labels.json", volume)
    scene = Scene("sample")
    history = History(scene)
    history.execute(AddVolume(volume, "vol-1"))
    segmentation.reference_volume_id = "vol-1"
    history.execute(AddSegmentation(segmentation, "seg-1"))
    for mesh in extract_meshes(segmentation, [segmentation.label_of(n) for n in MESHED]).values():
        mesh.segmentation_id = "seg-1"
        history.execute(AddMesh(mesh))
    return scene


class Host(QWidget):
    """What the main window gives the dialog: background tasks and error reports."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[tuple[str, BaseException]] = []
        self.task: Task | None = None

    def run_task(self, title, work, done) -> bool:
        if self.task is not None and self.task.running:
            return False
        self.task = Task(self, title, work, done, lambda exc: self.errors.append((title, exc)))
        return True

    def report_error(self, action: str, exc: BaseException) -> None:
        self.errors.append((action, exc))


@pytest.fixture
def host(qtbot) -> Host:
    widget = Host()
    qtbot.addWidget(widget)
    return widget


def _dialog(qtbot, host: Host, scene: Scene, out: Path | None = None) -> ExportDialog:
    dialog = ExportDialog(scene, host, run_task=host.run_task, report_error=host.report_error, output_dir=out)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def _export(qtbot, dialog: ExportDialog) -> list[Path]:
    assert dialog.export_button.isEnabled()
    with qtbot.waitSignal(dialog.exported, timeout=30_000) as exported:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    return exported.args[0]


def _mesh_vertices(scene: Scene) -> dict[str, int]:
    return {mesh.name: len(mesh.vertices) for mesh in scene.meshes.values()}


def test_segments_with_meshes_are_chosen_by_default(qtbot, host: Host, sample_scene: Scene) -> None:
    dialog = _dialog(qtbot, host, sample_scene)
    segmentation = sample_scene.get("seg-1")
    by_label = [s.name for _, s in sorted(segmentation.segments.items())]
    assert dialog.selected_format() == "stl"
    assert dialog.selected_segments() == [name for name in by_label if name in MESHED]
    items = [dialog.segment_list.item(row) for row in range(dialog.segment_list.count())]
    assert [item.text() for item in items] == by_label
    skin = next(item for item in items if item.text() == "skin")
    assert not skin.flags() & Qt.ItemFlag.ItemIsEnabled and "mesh" in skin.toolTip()
    assert not dialog.export_button.isEnabled()  # no output folder yet
    dialog.set_segment_checked("liver", False)
    dialog.set_format("nifti")  # a label map: every segment can go
    assert dialog.selected_segments() == [name for name in by_label if name != "liver"]
    dialog.set_format("glb")
    assert dialog.selected_segments() == [name for name in by_label if name in MESHED and name != "liver"]


@pytest.mark.parametrize("fmt", ["stl", "glb"])
def test_exported_meshes_reload_with_their_vertex_counts(
    qtbot, host: Host, sample_scene: Scene, tmp_path: Path, fmt: str
) -> None:
    dialog = _dialog(qtbot, host, sample_scene, tmp_path / "out")
    dialog.set_format(fmt)
    files = _export(qtbot, dialog)
    assert host.errors == []
    assert all(path.is_file() and path.parent == tmp_path / "out" for path in files)
    expected = _mesh_vertices(sample_scene)
    if fmt == "stl":
        assert sorted(path.stem for path in files) == sorted(expected)
        loaded = {path.stem: len(trimesh.load(path).vertices) for path in files}
    else:
        [path] = files
        scene = trimesh.load(path, force="scene")
        loaded = {
            node: len(scene.geometry[scene.graph[node][1]].vertices) for node in scene.graph.nodes_geometry
        }
    assert loaded == expected
    assert "Wrote" in dialog.result_label.text() and str(files[0]) in dialog.result_label.text()


def test_chosen_segments_as_dicom_seg_read_back(
    qtbot, host: Host, sample_scene: Scene, tmp_path: Path
) -> None:
    dialog = _dialog(qtbot, host, sample_scene, tmp_path)
    dialog.set_format("seg")
    for row in range(dialog.segment_list.count()):
        name = dialog.segment_list.item(row).text()
        dialog.set_segment_checked(name, name in ("liver", "pancreas"))
    [path] = _export(qtbot, dialog)
    volume, segmentation = sample_scene.get("vol-1"), sample_scene.get("seg-1")
    back = read_dicom_seg(path, volume)
    assert sorted(s.name for s in back.segments.values()) == ["liver", "pancreas"]
    for name in ("liver", "pancreas"):
        np.testing.assert_array_equal(
            back.mask(back.label_of(name)), segmentation.mask(segmentation.label_of(name))
        )


def test_a_failed_export_is_reported_and_the_dialog_keeps_working(
    qtbot, host: Host, sample_scene: Scene, tmp_path: Path
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"a file where the folder should be")
    dialog = _dialog(qtbot, host, sample_scene, blocker)
    dialog.set_format("ply")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.last_outcome is not None, timeout=30_000)
    assert [action for action, _ in host.errors] == ["Export"]
    assert isinstance(host.errors[0][1], SurgTwinError)
    assert "did not complete" in dialog.result_label.text() and "Traceback" not in dialog.result_label.text()
    assert blocker.read_bytes().startswith(b"a file")
    dialog.set_output_dir(tmp_path / "ply")
    files = _export(qtbot, dialog)
    assert sorted(path.stem for path in files) == sorted(MESHED)


def test_a_case_without_segmentation_has_nothing_to_export(qtbot, host: Host, tmp_path: Path) -> None:
    scene = Scene("empty")
    History(scene).execute(AddVolume(Volume(np.zeros((4, 5, 6), dtype=np.int16), np.eye(4), name="blank")))
    dialog = _dialog(qtbot, host, scene, tmp_path)
    assert dialog.segment_list.count() == 0
    assert not dialog.export_button.isEnabled()
    assert not dialog.start_export()
    assert "no segmentation" in dialog.result_label.text()
