"""CT threshold presets in Hounsfield units, shared by the threshold tool and the one-click twin."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThresholdPreset:
    name: str
    lower_hu: float
    upper_hu: float
    description: str


# Ranges from the usual CT windows; the one-click twin refines them with connectivity.
CT_PRESETS: dict[str, ThresholdPreset] = {
    p.name: p
    for p in (
        ThresholdPreset("bone", 200.0, 3071.0, "cortical and most cancellous bone"),
        ThresholdPreset("soft_tissue", -100.0, 200.0, "muscle and organs (fat excluded)"),
        ThresholdPreset("contrast_vessels", 150.0, 600.0, "contrast-filled vessels (also catches some bone)"),
        ThresholdPreset("lung_airway", -1024.0, -400.0, "air-filled lung and airways (and outside air)"),
        ThresholdPreset("skin_surface", -400.0, 3071.0, "everything denser than air: the body and its skin"),
        ThresholdPreset("fat", -190.0, -30.0, "adipose tissue"),
    )
}
