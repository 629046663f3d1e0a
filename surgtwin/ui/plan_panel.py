"""The Plan panel: the case's rulers, angles, trajectories and cut planes with their
measurements, the buttons that pick a planning tool, and the trajectory reslice controls.

Every change goes through a core command (``context.execute``). Measurements against the
anatomy (trajectory clearances, cut volumes) are cached per object position and thrown
away when a segmentation changes; on big label maps they run through ``context.run_task``
so the GUI never blocks for long.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgtwin.core.errors import SurgTwinError
from surgtwin.core.plan import Angle, CutPlane, PlanObject, Ruler, Trajectory
from surgtwin.core.plan.commands import EditPlanObject, RemovePlanObject, split_segment
from surgtwin.core.plan.geometry import cut_volumes, trajectory_clearances
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.ui.plan_overlay import angle_text, qcolor, ruler_text
from surgtwin.ui.plan_tools import PLAN_TOOLS, PlanTool
from surgtwin.ui.view_tools import ToolContext

# Label maps larger than this are measured off the GUI thread: on the 2.4 M-voxel sample a
# clearance takes ~0.1 s and cut volumes ~0.2 s, so 4 M keeps a GUI-thread block under ~0.3 s.
BACKGROUND_VOXELS = 4_000_000
logger = logging.getLogger(__name__)
SLIDER_STEPS_PER_MM = 10
PENDING = object()  # a measurement being computed in the background

ReslicePlane = tuple[np.ndarray, np.ndarray, np.ndarray, str]  # origin, column dir, row dir, title


def reslice_planes(trajectory: Trajectory, distance_mm: float) -> list[ReslicePlane]:
    """Three views at ``distance_mm`` from the entry: the probe's eye (perpendicular to the
    path) and the two planes containing it, whose rows run along the path (entry at the top).

    Each is ``(origin, column_dir, row_dir, title)``: ``origin`` is the path point, the
    directions are unit LPS vectors; column x row is the plane's normal (``axis``, ``-up``
    and ``across``; the sign only decides which side the plane is seen from).
    """
    frame = trajectory.reslice_frame(distance_mm)
    origin, across, up, axis = (np.asarray(v, dtype=np.float64) for v in frame)
    where = f"{distance_mm:.1f} mm"
    return [
        (origin, across, up, f"Probe's eye @ {where}"),
        (origin.copy(), across, axis, f"Along path (across) @ {where}"),
        (origin.copy(), up, axis, f"Along path (up) @ {where}"),
    ]


def _clearance_text(c: dict[str, Any]) -> str:
    if c["distance_mm"] is None:
        return "empty segment"
    if c["crosses"]:
        return f"CROSSES at {c['along_path_mm']:.1f} mm"
    return f"{c['distance_mm']:.1f} mm (at {c['along_path_mm']:.1f} mm along)"


class PlanPanel(QWidget):
    """Planning objects of the case and the planning tools (put it in a dock).

    Signals: ``tool_requested(tool)`` with a new :class:`PlanTool` to set on the slice views;
    ``reslice_requested(planes)`` with :func:`reslice_planes` output for the three slice
    views; ``reslice_cleared()`` to go back to axial/coronal/sagittal.
    """

    tool_requested = Signal(object)
    reslice_requested = Signal(object)
    reslice_cleared = Signal()

    def __init__(
        self,
        context: ToolContext,
        on_tool: Callable[[PlanTool], None] | None = None,
        parent: QWidget | None = None,
        *,
        background_voxels: int = BACKGROUND_VOXELS,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("plan_panel")
        self.context = context
        self._on_tool = on_tool
        self.background_voxels = background_voxels
        self._scene: Scene | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._plan_ids: set[str] = set()
        self._cache: dict[tuple, Any] = {}
        self._generation = 0  # bumped when anatomy changes: cached measurements are stale
        self._filling = False
        self.resliced_id: str | None = None
        self._resliced_points: tuple | None = None
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)
        self._retry_timer = QTimer(self)  # measure again once the window's task is over
        self._retry_timer.setSingleShot(True)
        self._retry_timer.setInterval(1000)
        self._retry_timer.timeout.connect(self.refresh)
        self._build()
        self.refresh()

    # --- widgets -------------------------------------------------------------------
    def _button(self, text: str, name: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        tools = QGridLayout()
        self.tool_buttons: dict[str, QPushButton] = {}
        for n, label in enumerate(PLAN_TOOLS):
            button = self._button(
                label, f"plan_tool_{PLAN_TOOLS[label].name}", lambda k=label: self.request_tool(k)
            )
            self.tool_buttons[label] = button
            tools.addWidget(button, n // 2, n % 2)
        layout.addLayout(tools)
        self.tree = QTreeWidget()
        self.tree.setObjectName("plan_list")
        self.tree.setHeaderLabels(["Object", "Measurement"])
        self.tree.setColumnWidth(0, 150)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        layout.addWidget(self.tree, 1)
        actions = QHBoxLayout()
        self.delete_button = self._button("Delete", "plan_delete", self.delete_selected)
        self.split_button = self._button("Split segment by plane", "plan_split", self.split_selected)
        self.apply_button = self._button(
            "Use selected segment", "plan_use_segment", self.apply_selected_segment
        )
        for button in (self.delete_button, self.apply_button, self.split_button):
            actions.addWidget(button)
        layout.addLayout(actions)
        reslice = QHBoxLayout()
        self.reslice_button = self._button("Reslice along trajectory", "plan_reslice", self.reslice_selected)
        self.back_button = self._button(
            "Back to axial/coronal/sagittal", "plan_reslice_back", self.clear_reslice
        )
        reslice.addWidget(self.reslice_button)
        reslice.addWidget(self.back_button)
        layout.addLayout(reslice)
        along = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("plan_reslice_slider")
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider_label = QLabel("")
        along.addWidget(QLabel("Along path:"))
        along.addWidget(self.slider, 1)
        along.addWidget(self.slider_label)
        layout.addLayout(along)
        self._update_buttons()

    # --- tools ---------------------------------------------------------------------
    def request_tool(self, label: str) -> PlanTool:
        """A new tool ('Ruler', 'Angle', 'Trajectory' or 'Cut plane') for the slice views."""
        tool = PLAN_TOOLS[label](self.context)
        self.context.set_status(
            {
                "Ruler": "Ruler: drag from one end to the other",
                "Angle": "Angle: click the end of the first arm, the vertex, then the second arm",
                "Trajectory": "Trajectory: click the entry, then the target (any view)",
                "Cut plane": "Cut plane: drag a line across the selected segment",
            }[label]
        )
        if self._on_tool is not None:
            self._on_tool(tool)
        self.tool_requested.emit(tool)
        return tool

    # --- the scene -----------------------------------------------------------------
    @property
    def scene(self) -> Scene:
        return self.context.scene

    def _rebind(self) -> None:
        if self._scene is self.context.scene:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._scene = self.context.scene
        self._unsubscribe = self._scene.subscribe(self._on_scene_event)
        self._cache.clear()
        self._generation += 1
        if self.resliced_id is not None:
            self.clear_reslice()

    def _on_scene_event(self, event: SceneEvent) -> None:
        if event.object_id is None or (
            event.object_id not in self._plan_ids and event.object_id not in self.scene.plans
        ):
            self._generation += 1  # anatomy changed: clearances and volumes are stale
            self._cache.clear()
        self._refresh_timer.start()  # coalesce; never rebuild the list inside a signal

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().closeEvent(event)

    def refresh(self) -> None:
        """Rebuild the list from the scene (the window also calls this when the case changes)."""
        self._rebind()
        selected = self.selected_id()
        plans = self.scene.plans
        self._plan_ids = set(plans)
        self._filling = True
        try:
            self.tree.clear()
            for object_id, plan in plans.items():
                item = self._plan_item(object_id, plan)
                if object_id == selected:
                    self.tree.setCurrentItem(item)
        finally:
            self._filling = False
        self._follow_resliced(plans)
        self._update_buttons()

    def _plan_item(self, object_id: str, plan: PlanObject) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [plan.name, ""])
        item.setData(0, Qt.ItemDataRole.UserRole, object_id)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Checked if plan.visible else Qt.CheckState.Unchecked)
        item.setForeground(0, QBrush(qcolor(plan.color)))
        item.setToolTip(0, f"{plan.plan_type.replace('_', ' ')}; double-click to rename")
        summary, details = self._measure(object_id, plan)
        item.setText(1, summary)
        for name, text, alarm in details:
            child = QTreeWidgetItem(item, [name, text])
            if alarm:
                child.setForeground(1, QBrush(QColor(230, 40, 40)))
        item.setExpanded(True)
        return item

    # --- measurements ----------------------------------------------------------------
    def _measure(self, object_id: str, plan: PlanObject) -> tuple[str, list[tuple[str, str, bool]]]:
        """(summary, [(name, text, alarm), ...]) shown for an object."""
        if isinstance(plan, Ruler):
            return ruler_text(plan.length_mm), []
        if isinstance(plan, Angle):
            return angle_text(plan.degrees), []
        if isinstance(plan, Trajectory):
            result = self.clearances(object_id)
            if result is PENDING:
                return ruler_text(plan.length_mm), [("clearances", "computing…", False)]
            if isinstance(result, str):
                return ruler_text(plan.length_mm), [("clearances", result, True)]
            return ruler_text(plan.length_mm), [
                (c["segment"], _clearance_text(c), bool(c["crosses"])) for c in result["clearances"]
            ]
        if isinstance(plan, CutPlane):
            result = self.cut_result(object_id)
            if result is PENDING:
                return "computing…", []
            if isinstance(result, str):
                return result, []
            return f"{result['segment']}: {result['positive_ml']:.1f} | {result['negative_ml']:.1f} mL", [
                ("normal side", f"{result['positive_ml']:.2f} mL", False),
                ("other side", f"{result['negative_ml']:.2f} mL", False),
                ("total", f"{result['total_ml']:.2f} mL", False),
            ]
        return "", []

    def _cached(self, key: tuple, voxels: int, title: str, work: Callable[[], Any]) -> Any:
        """The result of ``work()`` (or an error text), cached under ``key``; PENDING while a
        background task computes it."""
        key = (self._generation, *key)
        if key in self._cache:
            return self._cache[key]

        def guarded(_progress: object = None) -> Any:
            try:
                return work()
            except SurgTwinError as exc:  # e.g. the segment is gone: shown in the list
                return str(exc)
            except Exception as exc:  # noqa: BLE001 - a row says so; the panel keeps working
                logger.exception("measuring %s failed", title)
                return f"could not measure: {exc}"

        if voxels <= self.background_voxels:
            self._cache[key] = guarded()
            return self._cache[key]

        def done(result: Any) -> None:
            if key in self._cache:  # still current (a stale generation is never read again)
                self._cache[key] = result
                self._refresh_timer.start()

        # The window refuses a second task (and says so in its status line): wait quietly.
        if getattr(self.context, "busy", False) or not self.context.run_task(title, guarded, done):
            self._retry_timer.start()
            return "waiting for the running task to finish…"
        self._cache[key] = PENDING
        return PENDING

    def clearances(self, object_id: str) -> dict[str, Any] | str | object:
        """``trajectory_clearances`` of a trajectory against every segmentation of the case
        (nearest first), an error text, or PENDING."""
        plan = self.scene.get(object_id)
        segmentations = self.scene.segmentations
        snapshot = dataclasses.replace(plan)  # a background task must not see later edits
        voxels = sum(s.labels.size for s in segmentations.values())

        def work() -> dict[str, Any]:
            return _all_clearances(snapshot, list(segmentations.values()))

        key = ("clearance", object_id, plan.entry, plan.target, tuple(segmentations))
        return self._cached(key, voxels, f"Clearances of {plan.name}", work)

    def cut_result(self, object_id: str) -> dict[str, Any] | str | object:
        """``cut_volumes`` of a cut plane, an error text, or PENDING."""
        plan: CutPlane = self.scene.get(object_id)
        if plan.segmentation_id is None or plan.segment_label is None:
            return "no segment: select one, then 'Use selected segment'"
        if plan.segmentation_id not in self.scene.segmentations:
            return f"its segmentation {plan.segmentation_id!r} is no longer in the case"
        seg = self.scene.segmentations[plan.segmentation_id]
        snapshot = dataclasses.replace(plan)
        key = ("cut", object_id, plan.point, plan.normal, plan.segmentation_id, plan.segment_label)
        return self._cached(
            key, seg.labels.size, f"Volumes of {plan.name}", lambda: cut_volumes(snapshot, seg)
        )

    # --- selection and edits -----------------------------------------------------------
    def selected_id(self) -> str | None:
        item = self.tree.currentItem()
        while item is not None and item.parent() is not None:
            item = item.parent()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def item_of(self, object_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == object_id:
                return item
        return None

    def select(self, object_id: str) -> None:
        item = self.item_of(object_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def _selected_plan(self, kind: type[PlanObject]) -> tuple[str, Any] | None:
        object_id = self.selected_id()
        if object_id is None or object_id not in self.scene.plans:
            return None
        plan = self.scene.plans[object_id]
        return (object_id, plan) if isinstance(plan, kind) else None

    def _update_buttons(self) -> None:
        self.delete_button.setEnabled(self.selected_id() is not None)
        is_cut = self._selected_plan(CutPlane) is not None
        self.split_button.setEnabled(is_cut)
        self.apply_button.setEnabled(is_cut)
        self.reslice_button.setEnabled(self._selected_plan(Trajectory) is not None)
        self.back_button.setEnabled(self.resliced_id is not None)
        self.slider.setEnabled(self.resliced_id is not None)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or item.parent() is not None or column != 0:
            return
        object_id = item.data(0, Qt.ItemDataRole.UserRole)
        plan = self.scene.plans.get(object_id)
        if plan is None:
            return
        visible = item.checkState(0) == Qt.CheckState.Checked
        if visible != plan.visible:
            self.context.execute(EditPlanObject(object_id, visible=visible))
        elif item.text(0).strip() and item.text(0) != plan.name:
            self.rename(object_id, item.text(0).strip())
        elif not item.text(0).strip():
            self._refresh_timer.start()  # an empty name: show the old one again

    def rename(self, object_id: str, name: str) -> bool:
        return self.context.execute(EditPlanObject(object_id, name=name))

    def delete_selected(self) -> bool:
        object_id = self.selected_id()
        if object_id is None:
            return False
        name = self.scene.plans[object_id].name
        if self.context.execute(RemovePlanObject(object_id)):
            self.context.set_status(f"Deleted {name} (Undo brings it back)")
            return True
        return False

    def apply_selected_segment(self) -> bool:
        """Point the selected cut plane at the segment selected in the segments panel."""
        found = self._selected_plan(CutPlane)
        target = self.context.selected_segment()
        if found is None:
            return False
        if target is None:
            self.context.set_status("Select a segment in the Segments panel first")
            return False
        return self.context.execute(
            EditPlanObject(found[0], segmentation_id=target[0], segment_label=int(target[1]))
        )

    def split_selected(self) -> bool:
        """Split the selected cut plane's segment in two (one undo step) and report both volumes."""
        found = self._selected_plan(CutPlane)
        if found is None:
            return False
        object_id, plane = found
        try:
            command = split_segment(self.scene, object_id)
        except SurgTwinError as exc:
            self.context.report_error("Split segment by plane", exc)
            return False
        seg: Segmentation = self.scene.get(plane.segmentation_id)
        before = set(seg.segments)
        if not self.context.execute(command):
            return False
        kept = seg.segments[plane.segment_label]
        new_label = next(iter(set(seg.segments) - before))
        cut = seg.segments[new_label]
        self.context.set_status(
            f"Split {kept.name!r}: {kept.name!r} keeps {seg.volume_ml(plane.segment_label):.1f} mL, "
            f"{cut.name!r} has {seg.volume_ml(new_label):.1f} mL (Undo joins them again)"
        )
        return True

    # --- reslice -------------------------------------------------------------------------
    @property
    def reslice_distance_mm(self) -> float:
        return self.slider.value() / SLIDER_STEPS_PER_MM

    def reslice_selected(self) -> bool:
        found = self._selected_plan(Trajectory)
        if found is None:
            return False
        self.reslice(found[0])
        return True

    def reslice(self, object_id: str, distance_mm: float | None = None) -> list[ReslicePlane]:
        """Show the views along a trajectory, at ``distance_mm`` from the entry (default: the target)."""
        plan: Trajectory = self.scene.get(object_id)
        self.resliced_id = object_id
        self._resliced_points = (plan.entry, plan.target)
        distance = plan.length_mm if distance_mm is None else float(np.clip(distance_mm, 0.0, plan.length_mm))
        self.slider.blockSignals(True)
        self.slider.setRange(0, int(round(plan.length_mm * SLIDER_STEPS_PER_MM)))
        self.slider.setValue(int(round(distance * SLIDER_STEPS_PER_MM)))
        self.slider.blockSignals(False)
        self._update_buttons()
        return self._emit_reslice()

    def set_reslice_distance(self, distance_mm: float) -> None:
        self.slider.setValue(int(round(distance_mm * SLIDER_STEPS_PER_MM)))

    def _slider_moved(self, _value: int) -> None:
        if self.resliced_id is not None:
            self._emit_reslice()

    def _emit_reslice(self) -> list[ReslicePlane]:
        plan: Trajectory = self.scene.get(self.resliced_id)
        distance = self.reslice_distance_mm
        self.slider_label.setText(f"{distance:.1f} / {plan.length_mm:.1f} mm")
        planes = reslice_planes(plan, distance)
        self.reslice_requested.emit(planes)
        return planes

    def _follow_resliced(self, plans: dict[str, PlanObject]) -> None:
        """Keep the reslice on its trajectory when it is moved; drop it when it is removed."""
        if self.resliced_id is None:
            return
        plan = plans.get(self.resliced_id)
        if not isinstance(plan, Trajectory):
            self.clear_reslice()
        elif (plan.entry, plan.target) != self._resliced_points:
            self.reslice(self.resliced_id, min(self.reslice_distance_mm, plan.length_mm))

    def clear_reslice(self) -> None:
        self.resliced_id, self._resliced_points = None, None
        self.slider_label.setText("")
        self._update_buttons()
        self.reslice_cleared.emit()


def _all_clearances(trajectory: Trajectory, segmentations: list[Segmentation]) -> dict[str, Any]:
    """Clearances against every segmentation, nearest first (voxels; meshes would repeat them)."""
    if not segmentations:
        return trajectory_clearances(trajectory)
    reports = [trajectory_clearances(trajectory, seg) for seg in segmentations]
    merged = reports[0]
    for report in reports[1:]:
        merged["clearances"] += report["clearances"]
    merged["clearances"].sort(key=lambda c: np.inf if c["distance_mm"] is None else c["distance_mm"])
    return merged
