"""What a phantom study should look like: grids, image quality, patient, dose and tumours."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from oncoqi.errors import OncoQIError
from oncoqi.phantom.tumours import LOCATIONS, SHAPES


class PhantomOptionError(OncoQIError):
    """An option of the phantom generator is out of its range."""


def _check(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise PhantomOptionError(f"phantom option {name}={value:g} is out of range [{low:g}, {high:g}]")


@dataclass(frozen=True)
class TumourSpec:
    """One tumour; ``None`` lets the seed choose.

    Parameters
    ----------
    volume_ml
        Volume on the CT grid, 1-300 ml (random: log-uniform, 1-30 ml in parenchyma, else 2-60 ml).
    shape
        ``round``, ``lobulated`` or ``spiculated``.
    location
        ``parenchyma``, ``chest_wall`` or ``mediastinum`` (random: any that has room).
    suv
        True SUVbw of the tumour in the PET (random: 3-12).
    solid_fraction
        Share of the radius (in every direction) that is solid soft tissue; the rest has
        ground-glass density (:data:`oncoqi.phantom.tissues.GROUND_GLASS_HU`), as in the
        part-solid and pure ground-glass adenocarcinomas. 1 (the default): solid; 0: pure
        ground glass. Not drawn at random, so it never changes a seed's other draws.
    """

    volume_ml: float | None = None
    shape: str | None = None
    location: str | None = None
    suv: float | None = None
    solid_fraction: float = 1.0

    def __post_init__(self) -> None:
        _check("tumour volume (ml)", self.volume_ml, 1.0, 300.0)
        _check("tumour SUV", self.suv, 0.5, 50.0)
        _check("tumour solid_fraction", self.solid_fraction, 0.0, 1.0)
        if self.shape is not None and self.shape not in SHAPES:
            raise PhantomOptionError(f"unknown tumour shape {self.shape!r}; choose one of {', '.join(SHAPES)}")
        if self.location is not None and self.location not in LOCATIONS:
            raise PhantomOptionError(f"unknown tumour location {self.location!r}; choose one of {', '.join(LOCATIONS)}")


@dataclass(frozen=True)
class PhantomOptions:
    """Everything that defines a phantom study; the same options give the same study.

    Parameters
    ----------
    seed
        Seed of every random choice (anatomy, tumours, patient, noise, UIDs).
    tumours
        The tumours to place (may be empty).
    size, fov_mm
        CT matrix (pixels per side) and field of view (mm); pixel size is ``fov_mm / size``.
    slice_thickness_mm, slices
        CT slice thickness (= spacing, 1-5 mm) and number of slices, centred on the lungs.
    noise_hu, blur_mm
        CT noise standard deviation (HU) and scanner blur FWHM (mm); with blur, voxel
        averaging (partial volume) is added too, 0 turns all smoothing off.
    contrast_hu
        Intravenous contrast: how far blood rises above its unenhanced CT number (HU; about
        100-250 in a portal-venous or arterial chest CT), other tissues by their share
        (:data:`oncoqi.phantom.tissues.ENHANCEMENT`); 0 (the default) is a study without contrast.
    pet_size, pet_fov_mm, pet_slice_thickness_mm
        PET matrix, field of view (default: the CT's) and slice spacing; default size gives
        4 mm pixels. The PET covers the CT's z range.
    pet_blur_mm, pet_noise
        PET resolution FWHM (mm) and relative noise at the mean body activity; the truth is
        always that of the unblurred, noiseless activity.
    weight_kg, height_m, sex, dose_mbq, uptake_min
        Patient and injection (random when ``None``: 55-100 kg, weight-based 3.5 MBq/kg, 55-70 min).
    """

    seed: int = 0
    tumours: tuple[TumourSpec, ...] = (TumourSpec(),)
    size: int = 256
    fov_mm: float = 380.0
    slice_thickness_mm: float = 3.0
    slices: int = 100
    noise_hu: float = 12.0
    blur_mm: float = 1.0
    contrast_hu: float = 0.0
    pet_size: int | None = None
    pet_fov_mm: float | None = None
    pet_slice_thickness_mm: float = 4.0
    pet_blur_mm: float = 6.0
    pet_noise: float = 0.1
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None
    dose_mbq: float | None = None
    uptake_min: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tumours", tuple(self.tumours))
        if self.seed < 0:
            raise PhantomOptionError(f"phantom seed must be >= 0, got {self.seed}")
        _check("size", self.size, 32, 1024)
        _check("fov_mm", self.fov_mm, 150.0, 700.0)
        _check("slice_thickness_mm", self.slice_thickness_mm, 1.0, 10.0)
        _check("slices", self.slices, 4, 1000)
        _check("noise_hu", self.noise_hu, 0.0, 300.0)
        _check("blur_mm", self.blur_mm, 0.0, 10.0)
        _check("contrast_hu", self.contrast_hu, 0.0, 400.0)
        _check("pet_size", self.pet_size, 16, 512)
        _check("pet_fov_mm", self.pet_fov_mm, 150.0, 800.0)
        _check("pet_slice_thickness_mm", self.pet_slice_thickness_mm, 1.0, 10.0)
        _check("pet_blur_mm", self.pet_blur_mm, 0.0, 20.0)
        _check("pet_noise", self.pet_noise, 0.0, 1.0)
        _check("weight_kg", self.weight_kg, 20.0, 250.0)
        _check("height_m", self.height_m, 1.0, 2.3)
        _check("dose_mbq", self.dose_mbq, 10.0, 2000.0)
        _check("uptake_min", self.uptake_min, 5.0, 240.0)
        if self.sex is not None and self.sex not in ("M", "F", "O"):
            raise PhantomOptionError(f"phantom option sex must be M, F or O, got {self.sex!r}")

    @property
    def pet_fov(self) -> float:
        """PET field of view (mm)."""
        return self.pet_fov_mm if self.pet_fov_mm is not None else self.fov_mm

    @property
    def pet_matrix(self) -> int:
        """PET pixels per side."""
        return self.pet_size if self.pet_size is not None else max(16, int(round(self.pet_fov / 4.0)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (also what the UIDs are derived from)."""
        out = asdict(self)
        out["tumours"] = [asdict(t) for t in self.tumours]
        return out
