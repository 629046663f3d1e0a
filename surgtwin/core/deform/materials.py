"""Tissue materials: linear-elastic small-strain constants (SI units) with their sources.

Each preset's Young's modulus is a small-strain value inside the typical range for the tissue;
soft tissue is nonlinear, viscoelastic and varies between people, so a preset is a sensible
starting point, not a patient measurement. Where no single study gives the value, the preset
is the midpoint of the typical range and says so ("typical"). Densities are from ICRU Report 44
(1989), "Tissue substitutes in radiation dosimetry and measurement" (adult reference tissues).
Poisson's ratio: soft tissue is nearly incompressible; 0.45-0.49 is the range used in
simulation (measured values are close to 0.5 because tissue is mostly water). The sources are
listed in docs/deformation.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from surgtwin.core.deform.errors import SimulationError

CUSTOM_SOURCE = "custom values entered by the user"


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or _is_numpy_number(value)


def _is_numpy_number(value: Any) -> bool:
    # numpy scalars (np.float64, np.int32) are numbers too, but numpy bools are not
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return getattr(value, "ndim", None) == 0 and kind in ("i", "u", "f")


@dataclass(frozen=True)
class Material:
    """An isotropic elastic material: Young's modulus (Pa), Poisson's ratio, density (kg/m³)."""

    name: str
    youngs_pa: float
    poisson: float
    density_kg_m3: float
    source: str

    def __post_init__(self) -> None:
        what = f"material {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise SimulationError(f"a material needs a name, got {self.name!r}")
        for field_name, label in (
            ("youngs_pa", "Young's modulus (Pa)"),
            ("poisson", "Poisson's ratio"),
            ("density_kg_m3", "density (kg/m³)"),
        ):
            value = getattr(self, field_name)
            if not _is_number(value) or not math.isfinite(float(value)):
                raise SimulationError(f"{what}: {label} must be a finite number, got {value!r}")
            object.__setattr__(self, field_name, float(value))
        if self.youngs_pa <= 0.0:
            raise SimulationError(
                f"{what}: Young's modulus must be above 0 Pa, got {self.youngs_pa:g} Pa "
                "(soft tissue is about 1e3 to 1e5 Pa)"
            )
        if not 0.0 <= self.poisson < 0.5:
            raise SimulationError(
                f"{what}: Poisson's ratio must be in 0 to below 0.5, got {self.poisson:g} "
                "(0.5 would be perfectly incompressible; use 0.45-0.49 for tissue)"
            )
        if self.density_kg_m3 <= 0.0:
            raise SimulationError(
                f"{what}: density must be above 0 kg/m³, got {self.density_kg_m3:g} kg/m³ "
                "(soft tissue is about 950 to 1100 kg/m³)"
            )

    @property
    def shear_modulus_pa(self) -> float:
        """Lamé μ = E / (2 (1 + ν))."""
        return self.youngs_pa / (2.0 * (1.0 + self.poisson))

    @property
    def lame_lambda_pa(self) -> float:
        """Lamé λ = E ν / ((1 + ν)(1 − 2ν)); grows without bound as ν → 0.5."""
        return self.youngs_pa * self.poisson / ((1.0 + self.poisson) * (1.0 - 2.0 * self.poisson))

    @property
    def bulk_modulus_pa(self) -> float:
        """K = E / (3 (1 − 2ν))."""
        return self.youngs_pa / (3.0 * (1.0 - 2.0 * self.poisson))


# Small-strain Young's moduli; see docs/deformation.md for the full references.
PRESETS: dict[str, Material] = {
    m.name: m
    for m in (
        Material(
            "liver",
            4.1e3,
            0.48,
            1060.0,
            "Fung J et al., Defining normal liver stiffness range in a normal healthy Chinese "
            "population without liver disease, PLoS ONE 8(12):e85067, 2013 (transient elastography, "
            "530 healthy adults: mean 4.1 kPa, range 2.3-5.9 kPa); density ICRU Report 44 (1989)",
        ),
        Material(
            "kidney",
            10.0e3,
            0.48,
            1050.0,
            "typical (midpoint of 5-15 kPa); Rouviere O et al., MR elastography of the kidneys: "
            "feasibility and reproducibility in young healthy volunteers, J Magn Reson Imaging 34(4), "
            "2011 (parenchymal shear modulus about 4.9 kPa at 45 Hz); density ICRU Report 44 (1989)",
        ),
        Material(
            "spleen",
            6.0e3,
            0.48,
            1060.0,
            "typical (midpoint of 2-10 kPa); Umale S et al., Experimental mechanical characterization "
            "of abdominal organs: liver, kidney & spleen, J Mech Behav Biomed Mater 17, 2013; "
            "density ICRU Report 44 (1989)",
        ),
        Material(
            "brain",
            1.6e3,
            0.49,
            1040.0,
            "Budday S et al., Mechanical properties of gray and white matter brain tissue by "
            "indentation, J Mech Behav Biomed Mater 46:318-330, 2015 (grey about 1.4 kPa, white about "
            "1.9 kPa; preset is their mean); density ICRU Report 44 (1989)",
        ),
        Material(
            "muscle",
            25.0e3,
            0.48,
            1050.0,
            "typical relaxed skeletal muscle (10-100 kPa, strongly anisotropic); Gennisson J-L et al., "
            "Viscoelastic and anisotropic mechanical properties of in vivo muscle tissue assessed by "
            "supersonic shear imaging, Ultrasound Med Biol 36(5), 2010; density ICRU Report 44 (1989)",
        ),
        Material(
            "fat",
            3.25e3,
            0.48,
            950.0,
            "Samani A, Zubovits J, Plewes D, Elastic moduli of normal and pathological human breast "
            "tissues: an inversion-technique-based investigation of 169 samples, Phys Med Biol "
            "52(6):1565-1576, 2007 (fat, small strain); density ICRU Report 44 (1989)",
        ),
        Material(
            "skin",
            0.42e6,
            0.48,
            1090.0,
            "Agache PG et al., Mechanical properties and Young's modulus of human skin in vivo, "
            "Arch Dermatol Res 269(3), 1980 (torsion, about 0.42 MPa below 30 years, doubling with "
            "age); density ICRU Report 44 (1989)",
        ),
    )
}


def preset_names() -> list[str]:
    return list(PRESETS)


def material(name: str | Material) -> Material:
    """The preset called ``name`` (case-insensitive), or ``name`` itself when it is a Material."""
    if isinstance(name, Material):
        return name
    if not isinstance(name, str):
        raise SimulationError(f"a material is a preset name or a Material, got {name!r}")
    key = name.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    raise SimulationError(
        f"no material preset named {name!r}; presets: {', '.join(PRESETS)} "
        "(or give custom values: Young's modulus in Pa, Poisson's ratio, density in kg/m³)"
    )


def material_for_segment(segment_name: str) -> Material | None:
    """The preset whose name is a word of ``segment_name`` ("kidney_left" -> kidney), else None."""
    words = segment_name.lower().replace("-", "_").replace(" ", "_").split("_")
    for word in words:
        if word in PRESETS:
            return PRESETS[word]
    return None


def custom_material(youngs_pa: float, poisson: float, density_kg_m3: float, name: str = "custom") -> Material:
    """A material from user values in SI units; a SimulationError names any bad value."""
    return Material(name, youngs_pa, poisson, density_kg_m3, CUSTOM_SOURCE)
