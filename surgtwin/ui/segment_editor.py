"""The segment editor: threshold (with a live preview), islands, smoothing, margin, fill holes.

It acts on ``context.selected_segment()``. Each operation computes its edit off the GUI
thread (``context.run_task``: a 512×512×300 CT takes longer than a frame) from plain
values captured beforehand, and the GUI thread then runs the resulting core command
through ``context.execute``: one operation, one undo step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolBox,
    QVBoxLayout,
    QWidget,
)

from surgtwin.core.commands import Command, CommandGroup
from surgtwin.core.errors import SegmentationError
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import EditLabels
from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.segmentation.presets import CT_PRESETS
from surgtwin.core.segmentation.tools import (
    apply_mask,
    body_mask,
    fill_holes,
    grow,
    keep_largest_island,
    remove_small_islands,
    shrink,
    smooth_gaussian,
    smooth_median,
    split_islands,
    threshold,
)
from surgtwin.core.volume import Volume
from surgtwin.ui.spin_boxes import number_box
from surgtwin.ui.view_tools import Preview, ToolContext

Key = tuple[str, int]  # (segmentation id, label)

THRESHOLD, ISLANDS, SMOOTHING, MARGIN, FILL = range(5)
NOTHING_SELECTED = "Select a segment in the Segments panel first"
MODES = (
    ("replace", "Set the segment to the range"),
    ("add", "Add the range to the segment"),
    ("remove", "Remove the range from the segment"),
)


@dataclass(frozen=True)
class Target:
    """What an operation edits, captured on the GUI thread."""

    scene: Scene
    key: Key
    segmentation: Segmentation
    segment: Segment
    overwrite: bool  # may the edit take voxels of other segments?


def changes_nothing(command: Command) -> bool:
    if isinstance(command, EditLabels):
        return command.is_empty
    if isinstance(command, CommandGroup):
        return all(changes_nothing(c) for c in command.commands)
    return False


def masked_edit(
    target: Target,
    mask: np.ndarray,
    mode: str,
    tool: str,
    parameters: dict[str, Any],
    also_editable: tuple[int, ...] = (),
) -> EditLabels:
    """``apply_mask`` that leaves other segments' voxels alone unless ``target.overwrite``
    (except the labels in ``also_editable``, e.g. the segment a threshold is restricted to)."""
    seg, label = target.segmentation, target.key[1]
    if not target.overwrite and mode != "remove":
        editable = (seg.labels == 0) | (seg.labels == label)
        for other in also_editable:
            editable |= seg.labels == other
        mask = mask & editable
    return apply_mask(seg, label, mask, mode, tool=tool, parameters=parameters)  # type: ignore[arg-type]


class SegmentEditor(QWidget):
    """Editing tools for the selected segment (a dock panel).

    The window calls :meth:`refresh` after every scene change and selection change.
    """

    def __init__(self, context: ToolContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("segment_editor")
        self.context = context
        self._key: Key | None = None
        self._previewing = False
        self._preview_shown = False
        self._within_cache: tuple[tuple[int, int], np.ndarray] | None = None
        self._tooltips: dict[QPushButton, str] = {}

        self.target_label = QLabel(NOTHING_SELECTED)
        self.target_label.setWordWrap(True)
        self.overwrite_check = QCheckBox("Overwrite other segments")
        self.overwrite_check.setToolTip(
            "When ticked, edits may take voxels from other segments; otherwise those stay as they are"
        )
        self.sections = QToolBox()
        self.sections.addItem(self._threshold_page(), "Threshold")
        self.sections.addItem(self._islands_page(), "Islands")
        self.sections.addItem(self._smoothing_page(), "Smoothing")
        self.sections.addItem(self._margin_page(), "Margin")
        self.sections.addItem(self._fill_page(), "Fill holes")
        self.sections.currentChanged.connect(self._section_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.target_label)
        layout.addWidget(self.overwrite_check)
        layout.addWidget(self.sections, 1)
        self.refresh()

    # --- pages ------------------------------------------------------------------------
    def _button(self, text: str, tooltip: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(text.lower().replace(" ", "_"))
        self._tooltips[button] = tooltip
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _threshold_page(self) -> QWidget:
        self.preset_combo = QComboBox()
        self.preset_combo.addItem("Custom", None)
        for preset in CT_PRESETS.values():
            text = f"{preset.name.replace('_', ' ')} ({preset.lower_hu:g} … {preset.upper_hu:g} HU)"
            self.preset_combo.addItem(text, preset.name)
            self.preset_combo.setItemData(
                self.preset_combo.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole
            )
        bone = CT_PRESETS["bone"]
        self.lower_spin = number_box(-1e6, 1e6, bone.lower_hu, " HU", keyboard_tracking=False)
        self.upper_spin = number_box(-1e6, 1e6, bone.upper_hu, " HU", keyboard_tracking=False)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData("bone"))
        self.within_combo = QComboBox()
        self.mode_combo = QComboBox()
        for mode, text in MODES:
            self.mode_combo.addItem(text, mode)
        self.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        for spin in (self.lower_spin, self.upper_spin):
            spin.valueChanged.connect(self._range_edited)
        self.within_combo.currentIndexChanged.connect(lambda _i: self._threshold_edited())
        self.threshold_apply_button = self._button(
            "Apply threshold", "Apply the range to the segment (one undo step)", self.apply_threshold
        )
        self.threshold_cancel_button = self._button(
            "Cancel", "Hide the preview without changing anything", self.cancel_preview
        )
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Lower", self.lower_spin)
        form.addRow("Upper", self.upper_spin)
        form.addRow("Inside", self.within_combo)
        form.addRow("Mode", self.mode_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.threshold_apply_button)
        buttons.addWidget(self.threshold_cancel_button)
        form.addRow(buttons)
        return page

    def _islands_page(self) -> QWidget:
        self.island_size_spin = number_box(0.0, 1e9, 100.0, " mm³", keyboard_tracking=False)
        self.keep_largest_button = self._button(
            "Keep largest", "Keep only the segment's largest connected piece", self.keep_largest
        )
        self.remove_small_button = self._button(
            "Remove small", "Remove pieces smaller than the minimum size", self.remove_small
        )
        self.split_button = self._button(
            "Split",
            "Move every piece but the largest into a segment of its own (pieces below the minimum "
            "size are removed)",
            self.split,
        )
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("Minimum size", self.island_size_spin)
        form.addRow(self.keep_largest_button)
        form.addRow(self.remove_small_button)
        form.addRow(self.split_button)
        return page

    def _smoothing_page(self) -> QWidget:
        self.smooth_method_combo = QComboBox()
        self.smooth_method_combo.addItem("Gaussian (sigma)", "gaussian")
        self.smooth_method_combo.addItem("Median (radius)", "median")
        self.smooth_size_spin = number_box(0.1, 50.0, 1.0, " mm", 2, keyboard_tracking=False)
        self.smooth_button = self._button("Smooth", "Smooth the segment's surface", self.smooth)
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("Method", self.smooth_method_combo)
        form.addRow("Size", self.smooth_size_spin)
        form.addRow(self.smooth_button)
        return page

    def _margin_page(self) -> QWidget:
        self.margin_combo = QComboBox()
        self.margin_combo.addItem("Grow", "grow")
        self.margin_combo.addItem("Shrink", "shrink")
        self.margin_spin = number_box(0.1, 100.0, 2.0, " mm", 2, keyboard_tracking=False)
        self.margin_button = self._button(
            "Apply margin", "Grow or shrink the segment by the distance", self.apply_margin
        )
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("Direction", self.margin_combo)
        form.addRow("Distance", self.margin_spin)
        form.addRow(self.margin_button)
        return page

    def _fill_page(self) -> QWidget:
        self.fill_per_slice_check = QCheckBox("Slice by slice (axial)")
        self.fill_per_slice_check.setToolTip("Also fill holes that open to the outside in 3D but not in 2D")
        self.fill_button = self._button(
            "Fill holes", "Fill cavities enclosed by the segment", self.fill_holes
        )
        page = QWidget()
        form = QFormLayout(page)
        form.addRow(self.fill_per_slice_check)
        form.addRow(self.fill_button)
        return page

    # --- following the scene and the selection ------------------------------------------
    def refresh(self) -> None:
        """Re-read the selected segment; a new selection drops the threshold preview."""
        key = self.context.selected_segment()
        if key != self._key:
            self._key = key
            self._previewing = False
        self._within_cache = None  # labels may have changed
        target = self._target()
        self.target_label.setText(NOTHING_SELECTED if target is None else f"Editing: {target.segment.name}")
        for button, tooltip in self._tooltips.items():
            button.setEnabled(target is not None)
            button.setToolTip(tooltip if target is not None else NOTHING_SELECTED)
        self._fill_within(target)
        self._update_preview()

    def _fill_within(self, target: Target | None) -> None:
        chosen = self.within_combo.currentData()
        self.within_combo.blockSignals(True)
        try:
            self.within_combo.clear()
            self.within_combo.addItem("Everywhere", "all")
            self.within_combo.addItem("The body", "body")
            if target is not None:
                for label, segment in target.segmentation.segments.items():
                    if label != target.key[1]:
                        self.within_combo.addItem(f"Segment {segment.name}", int(label))
            index = self.within_combo.findData(chosen) if chosen is not None else 0
            self.within_combo.setCurrentIndex(max(index, 0))
        finally:
            self.within_combo.blockSignals(False)

    def _target(self) -> Target | None:
        key = self._key
        if key is None:
            return None
        segmentation = self.context.scene.segmentations.get(key[0])
        segment = None if segmentation is None else segmentation.segments.get(key[1])
        if segmentation is None or segment is None:
            return None
        return Target(self.context.scene, key, segmentation, segment, self.overwrite_check.isChecked())

    # --- threshold and its preview ----------------------------------------------------
    def _preset_chosen(self, _index: int) -> None:
        name = self.preset_combo.currentData()
        if name is not None:
            preset = CT_PRESETS[name]
            for spin, value in ((self.lower_spin, preset.lower_hu), (self.upper_spin, preset.upper_hu)):
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
        self._threshold_edited()

    def _range_edited(self, _value: float) -> None:
        name = self.preset_combo.currentData()
        if name is not None:
            preset = CT_PRESETS[name]
            if (self.lower_spin.value(), self.upper_spin.value()) != (preset.lower_hu, preset.upper_hu):
                self.preset_combo.blockSignals(True)
                self.preset_combo.setCurrentIndex(0)  # "Custom"
                self.preset_combo.blockSignals(False)
        self._threshold_edited()

    def _threshold_edited(self) -> None:
        self._previewing = True
        self._update_preview()

    def _section_changed(self, index: int) -> None:
        self._previewing = index == THRESHOLD
        self._update_preview()

    def threshold_range(self) -> tuple[float, float]:
        return (self.lower_spin.value(), self.upper_spin.value())

    def _within_mask(self, target: Target) -> np.ndarray | None:
        """The restricting segment's voxels (for the preview; cached until the scene changes)."""
        within = self.within_combo.currentData()
        if not isinstance(within, int):
            return None  # everywhere; the body is computed on Apply only (too slow to preview)
        cache_key = (id(target.segmentation.labels), within)
        if self._within_cache is None or self._within_cache[0] != cache_key:
            self._within_cache = (cache_key, target.segmentation.labels == within)
        return self._within_cache[1]

    def _update_preview(self) -> None:
        target = self._target()
        show = self._previewing and target is not None and self.sections.currentIndex() == THRESHOLD
        if show:
            assert target is not None
            self.context.set_preview(
                Preview(
                    color=target.segment.color,
                    value_range=self.threshold_range(),
                    mask=self._within_mask(target),
                )
            )
            self._preview_shown = True
        elif self._preview_shown:
            self.context.set_preview(None)
            self._preview_shown = False

    @property
    def previewing(self) -> bool:
        return self._preview_shown

    def cancel_preview(self) -> None:
        self._previewing = False
        self._update_preview()

    def apply_threshold(self) -> bool:
        target = self._require_target("Threshold")
        volume = self._require_volume("Threshold", target)
        if target is None or volume is None:
            return False
        lower, upper = self.threshold_range()
        within = self.within_combo.currentData()  # "all", "body" or a segment's label
        mode = str(self.mode_combo.currentData())
        parameters = {"lower": lower, "upper": upper, "inside": within, "mode": mode}
        self.cancel_preview()

        def work(progress: Progress) -> Command:
            progress.start("thresholding", 0)
            mask = threshold(volume, lower, upper)
            also: tuple[int, ...] = ()
            if within == "body":
                progress.start("finding the body", 0)
                mask &= body_mask(volume)
            elif isinstance(within, int):
                mask &= target.segmentation.labels == within
                also = (within,)
            progress.check()
            return masked_edit(target, mask, mode, "threshold", parameters, also)

        return self._run("Threshold", target, work)

    # --- islands, smoothing, margin, fill -------------------------------------------------
    def keep_largest(self) -> bool:
        return self._run_mask_tool("Keep largest island", "keep_largest_island", {}, keep_largest_island)

    def remove_small(self) -> bool:
        size = self.island_size_spin.value()
        target = self._target()

        def compute(mask: np.ndarray) -> np.ndarray:
            assert target is not None
            return remove_small_islands(mask, size, target.segmentation)

        return self._run_mask_tool(
            "Remove small islands", "remove_small_islands", {"min_volume_mm3": size}, compute
        )

    def split(self) -> bool:
        target = self._require_target("Split islands")
        if target is None:
            return False
        size = self.island_size_spin.value()

        def work(progress: Progress) -> Command:
            progress.start("splitting islands", 0)
            return split_islands(target.segmentation, target.key[1], min_volume_mm3=size)

        return self._run("Split islands", target, work)

    def smooth(self) -> bool:
        method = str(self.smooth_method_combo.currentData())
        size = self.smooth_size_spin.value()
        target = self._target()
        smoother = smooth_gaussian if method == "gaussian" else smooth_median

        def compute(mask: np.ndarray) -> np.ndarray:
            assert target is not None
            return smoother(mask, size, target.segmentation)

        parameters = {"method": method, "size_mm": size}
        return self._run_mask_tool("Smooth", f"smooth_{method}", parameters, compute)

    def apply_margin(self) -> bool:
        direction = str(self.margin_combo.currentData())
        distance = self.margin_spin.value()
        target = self._target()
        operation = grow if direction == "grow" else shrink

        def compute(mask: np.ndarray) -> np.ndarray:
            assert target is not None
            return operation(mask, distance, target.segmentation)

        return self._run_mask_tool("Margin", direction, {"radius_mm": distance}, compute)

    def fill_holes(self) -> bool:
        per_slice = self.fill_per_slice_check.isChecked()
        return self._run_mask_tool(
            "Fill holes",
            "fill_holes",
            {"per_slice": per_slice},
            lambda mask: fill_holes(mask, per_slice=per_slice),
        )

    # --- running an operation -----------------------------------------------------------
    def _require_target(self, action: str) -> Target | None:
        target = self._target()
        if target is None:
            self.context.report_error(action, SegmentationError(NOTHING_SELECTED.lower()))
        return target

    def _require_volume(self, action: str, target: Target | None) -> Volume | None:
        if target is None:
            return None
        found = self.context.current_volume()
        if found is None:
            self.context.report_error(action, SegmentationError("the case has no image to threshold"))
            return None
        volume = found[1]
        if volume.voxels.shape != target.segmentation.labels.shape:
            self.context.report_error(
                action,
                SegmentationError(
                    f"the segmentation ({target.segmentation.labels.shape}) is not on the image's grid "
                    f"({volume.voxels.shape})"
                ),
            )
            return None
        return volume

    def _run_mask_tool(
        self,
        title: str,
        tool: str,
        parameters: dict[str, Any],
        compute: Callable[[np.ndarray], np.ndarray],
    ) -> bool:
        """The segment becomes ``compute(its mask)`` (one label edit)."""
        target = self._require_target(title)
        if target is None:
            return False

        def work(progress: Progress) -> Command:
            progress.start(title.lower(), 0)
            result = compute(target.segmentation.labels == target.key[1])
            progress.check()
            return masked_edit(target, result, "replace", tool, parameters)

        return self._run(title, target, work)

    def _run(self, title: str, target: Target, work: Callable[[Progress], Command]) -> bool:
        def done(command: Command) -> None:
            if self.context.scene is not target.scene:
                return  # another case was opened meanwhile
            if changes_nothing(command):
                self.context.set_status(f"{title}: nothing to change in {target.segment.name}")
            elif self.context.execute(command):
                self.context.set_status(f"{title}: {target.segment.name} changed")

        return self.context.run_task(title, work, done)
