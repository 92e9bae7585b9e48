"""SUV scale factors from the DICOM headers of a PET series, and their application to a volume.

The rules follow the QIBA "vendor-neutral pseudo-code for SUV calculation" as implemented by
cornerstonejs/calculate-suv, with the gaps that implementation and QIICR's SUVFactorCalculator
leave closed here:

Decay reference ("scan") date-time, per frame
    * Series Date/Time, when it is not after the earliest Acquisition Date/Time of the series
      (the normal case: Series Date/Time is the reference of all PET timing, PS3.3 C.8.9.1);
    * else the GE private post-injection date-time (0009,xx0D) (creator ``GEMS_PETD_01``);
    * else, when every frame has Frame Reference Time (0054,1300) and Actual Frame Duration
      (0018,1242), the QIBA back-computation from each frame's acquisition start:
      ``scan = acquisition + t_avg - FrameReferenceTime``, where
      ``t_avg = ln(lambda*T / (1 - exp(-lambda*T))) / lambda`` is the time within a frame of
      duration T at which the activity equals its frame average (lambda = ln 2 / half-life);
    * else the earliest Acquisition Date/Time.
    Every choice other than the first is reported as a warning.
Injection date-time
    Radiopharmaceutical Start DateTime (0018,1078) when present; else Radiopharmaceutical Start
    Time (0018,1072) on the Series Date, moved one day back when that would place the injection
    after the scan (a scan crossing midnight). Both assumptions are warnings.
Decay Correction (0054,1102)
    ``START``: the dose is decayed to the scan time, ``D = A0 * 2**(-dt / T_half)``.
    ``ADMIN``: pixels are already decay-corrected to the injection, so ``D = A0`` (dt = 0).
    ``NONE``: refused (each frame would need its own decay correction).
Units (0054,1001)
    ``BQML``: ``SUVbw factor = W[g] / D[Bq]``, applied to rescaled pixels in Bq/ml -> g/ml.
    ``CNTS`` (Philips): the private SUV Scale Factor (7053,xx00) of each frame when all frames
    have a non-zero one; else Activity Concentration Scale Factor (7053,xx09) times the BQML
    factor; else refused naming both.
    ``GML``: already SUV; SUV Type (0054,1006) ``BW`` (or absent, a warning) gives factor 1,
    ``BSA`` gives ``W[g] / BSA[cm2]``; others are refused.

The other flavours derive from SUVbw, frame by frame:

* SUL (lean body mass, Janmahasatian 2005): ``f_SUL = f_bw * LBM / W`` with, in kg,
  ``LBM = 9270 W / (6680 + 216 BMI)`` for men and ``9270 W / (8780 + 244 BMI)`` for women,
  ``BMI = W / H**2`` (W in kg, H in m). Needs Patient's Size and a sex of M or F.
* SUVbsa (Du Bois 1916): ``f_bsa = f_bw * BSA[cm2] / W[g]`` with
  ``BSA[m2] = 0.007184 * W[kg]**0.425 * H[cm]**0.725``; units cm2/ml.

All factors multiply the pixel values *after* Rescale Slope/Intercept of their own frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pydicom

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.pet.enums import DecayCorrection, PixelUnits, SUVType
from oncoqi.pet.suv_tags import (
    GE_CREATOR,
    GE_GROUP,
    GE_POST_INJECTION_DATETIME,
    PHILIPS_ACTIVITY_CONCENTRATION_SCALE_FACTOR,
    PHILIPS_CREATOR,
    PHILIPS_GROUP,
    PHILIPS_SUV_SCALE_FACTOR,
    combine,
    parse_da,
    parse_dt,
    parse_float,
    parse_tm,
    private_value,
    seconds,
)

#: Relative spread below which per-frame factors are considered one factor.
SAME_FACTOR_RTOL = 1e-6

#: Series-level attributes that must be identical in every instance of one series.
_SERIES_LEVEL = (
    "Units",
    "DecayCorrection",
    "PatientWeight",
    "PatientSize",
    "PatientSex",
    "SeriesDate",
    "SeriesTime",
    "CorrectedImage",
    "SUVType",
    "SeriesInstanceUID",
)


@dataclass(frozen=True, eq=False)
class SUVFactors:
    """The SUV scale factors of one PET series, frame by frame, with how they were obtained.

    A factor ``f`` converts a rescaled pixel value ``v = stored * RescaleSlope + RescaleIntercept``
    of its frame into an SUV: ``SUV = f * v``.

    Attributes
    ----------
    units
        Units (0054,1001) of the pixels (``BQML``, ``CNTS``, ``GML``).
    decay_correction
        Decay Correction (0054,1102) (``START``, ``ADMIN``), or None when absent and not needed.
    sop_instance_uids
        The frames (instances), in the order of the per-frame factors.
    frame_factors
        For each computable flavour, one factor per frame. A flavour that cannot be computed
        is absent and the reason is in ``warnings``.
    warnings
        Every assumption made and every reason a flavour is missing.
    weight_kg, height_m, sex
        Patient's Weight, Size (metres) and Sex as used (None where absent).
    lbm_kg
        Lean body mass (Janmahasatian), kg, or None.
    bsa_m2
        Body surface area (Du Bois), m2, or None.
    injected_dose_bq, half_life_s
        Radionuclide Total Dose (0018,1074) and Half Life (0018,1075), where used.
    injection_datetime
        Injection date-time used, where used.
    scan_datetime
        Decay reference date-time of the first frame, where used.
    decay_time_s
        ``scan_datetime - injection_datetime`` in seconds (0 for ADMIN), where used.
    scan_time_source
        Which rule gave the scan time (``series``, ``ge_private``, ``frame_reference_time``,
        ``earliest_acquisition``), or None where no decay was computed.
    """

    units: str
    decay_correction: str | None
    sop_instance_uids: tuple[str, ...]
    frame_factors: Mapping[SUVType, tuple[float, ...]]
    warnings: tuple[str, ...] = ()
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None
    lbm_kg: float | None = None
    bsa_m2: float | None = None
    injected_dose_bq: float | None = None
    half_life_s: float | None = None
    injection_datetime: datetime | None = None
    scan_datetime: datetime | None = None
    decay_time_s: float | None = None
    scan_time_source: str | None = None

    def frames(self, suv_type: SUVType) -> np.ndarray | None:
        """The per-frame factors of ``suv_type`` (float64), or None if not computable."""
        f = self.frame_factors.get(suv_type)
        return None if f is None else np.asarray(f, dtype=float)

    def varies_per_frame(self, suv_type: SUVType) -> bool:
        """True when the frames of ``suv_type`` differ by more than :data:`SAME_FACTOR_RTOL`."""
        f = self.frames(suv_type)
        if f is None:
            return False
        return bool(np.ptp(f) > SAME_FACTOR_RTOL * np.max(np.abs(f)))

    def factor(self, suv_type: SUVType) -> float | None:
        """The one factor of ``suv_type`` for the whole series.

        Returns
        -------
        float or None
            The mean of the per-frame factors when they agree within :data:`SAME_FACTOR_RTOL`;
            None when the flavour cannot be computed or differs between frames (then use
            :meth:`frames`).
        """
        f = self.frames(suv_type)
        if f is None or self.varies_per_frame(suv_type):
            return None
        return float(np.mean(f))

    @property
    def suvbw(self) -> float | None:
        """SUVbw factor (g/ml per rescaled pixel unit), see :meth:`factor`."""
        return self.factor(SUVType.BW)

    @property
    def sul(self) -> float | None:
        """SUL (lean body mass, Janmahasatian) factor, see :meth:`factor`."""
        return self.factor(SUVType.SUL)

    @property
    def suvbsa(self) -> float | None:
        """SUVbsa (Du Bois) factor, cm2/ml per rescaled pixel unit, see :meth:`factor`."""
        return self.factor(SUVType.BSA)

    def unavailable(self, suv_type: SUVType) -> InputError:
        """The error saying why ``suv_type`` cannot be computed (the warnings that name it)."""
        reasons = "; ".join(w for w in self.warnings if suv_type.key in w or suv_type.label in w)
        return InputError(f"{suv_type.label} cannot be computed for this series" + (f": {reasons}" if reasons else ""))

    def for_instances(self, sop_instance_uids: Sequence[str], suv_type: SUVType) -> np.ndarray:
        """The factors of ``suv_type`` in the order of ``sop_instance_uids`` (e.g. slice order).

        Raises
        ------
        InputError
            When the flavour is not computable or an instance is not one of the series'.
        """
        f = self.frames(suv_type)
        if f is None:
            raise self.unavailable(suv_type)
        index = {uid: n for n, uid in enumerate(self.sop_instance_uids)}
        missing = [u for u in sop_instance_uids if u not in index]
        if missing:
            raise InputError(
                f"{len(missing)} instance(s) not in the PET series the factors belong to, e.g. {missing[0]}"
            )
        return f[[index[u] for u in sop_instance_uids]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: ``suvbw``, ``sul``, ``suvbsa`` (null where not one factor),
        ``units``, ``decay_correction``, ``warnings``, the SUV unit codes, the inputs used and,
        only when a flavour differs between frames, ``per_frame`` factors."""
        out: dict[str, Any] = {t.key: self.factor(t) for t in SUVType}
        out.update(
            units=self.units,
            decay_correction=self.decay_correction,
            warnings=list(self.warnings),
            suv_units={t.key: t.ucum for t in SUVType},
            weight_kg=self.weight_kg,
            height_m=self.height_m,
            sex=self.sex,
            lbm_kg=self.lbm_kg,
            bsa_m2=self.bsa_m2,
            injected_dose_bq=self.injected_dose_bq,
            half_life_s=self.half_life_s,
            injection_datetime=self.injection_datetime.isoformat() if self.injection_datetime else None,
            scan_datetime=self.scan_datetime.isoformat() if self.scan_datetime else None,
            decay_time_s=self.decay_time_s,
            scan_time_source=self.scan_time_source,
            number_of_frames=len(self.sop_instance_uids),
        )
        varying = {t.key: list(self.frame_factors[t]) for t in self.frame_factors if self.varies_per_frame(t)}
        if varying:
            out["per_frame"] = {"sop_instance_uids": list(self.sop_instance_uids), **varying}
        return out


# --------------------------------------------------------------------------- body size


def lean_body_mass_janmahasatian(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass in kg by Janmahasatian et al., Clin Pharmacokinet 2005;44:1051.

    ``LBM = 9270 W / (6680 + 216 BMI)`` (male) or ``9270 W / (8780 + 244 BMI)`` (female), with
    ``BMI = W / H**2``, W in kg and H in m. This is the LBM that PERCIST's SUL uses.

    Raises
    ------
    ValueError
        When ``sex`` is not ``M`` or ``F`` (the formula has no other variant).
    """
    bmi = weight_kg / height_m**2
    if sex == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    if sex == "F":
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    raise ValueError(f"Janmahasatian lean body mass needs sex M or F, not {sex!r}")


def body_surface_area_dubois(weight_kg: float, height_m: float) -> float:
    """Body surface area in m2 by Du Bois & Du Bois (1916).

    ``BSA = 0.007184 * W**0.425 * H**0.725`` with W in kg and H in **cm**.
    """
    return 0.007184 * weight_kg**0.425 * (100.0 * height_m) ** 0.725


# --------------------------------------------------------------------------- helpers


def _value(ds: pydicom.Dataset, keyword: str) -> Any:
    v = ds.get(keyword)
    return None if v in (None, "") else v


def _consistency(datasets: Sequence[pydicom.Dataset]) -> None:
    def radio(ds: pydicom.Dataset) -> tuple:
        seq = ds.get("RadiopharmaceuticalInformationSequence")
        if not seq:
            return ()
        it = seq[0]
        keys = (
            "RadionuclideTotalDose",
            "RadionuclideHalfLife",
            "RadiopharmaceuticalStartTime",
            "RadiopharmaceuticalStartDateTime",
        )
        return tuple(str(it.get(k, "")) for k in keys)

    differing = []
    for kw in _SERIES_LEVEL:
        values = {str(ds.get(kw, "")) for ds in datasets}
        if len(values) > 1:
            differing.append(f"{kw} ({', '.join(sorted(values)[:3])})")
    if len({radio(ds) for ds in datasets}) > 1:
        differing.append("RadiopharmaceuticalInformationSequence (dose, half-life or start time)")
    if differing:
        raise InputError(
            "the instances do not form one PET series: series-level attributes differ between them: "
            + "; ".join(differing)
        )


def _radiopharmaceutical(ds: pydicom.Dataset, warnings: list[str]) -> pydicom.Dataset:
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        raise InputError(
            "Radiopharmaceutical Information Sequence (0054,0016) is missing: the injected dose, "
            "half-life and injection time needed for SUV are in it"
        )
    if len(seq) > 1:
        warnings.append(f"Radiopharmaceutical Information Sequence has {len(seq)} items: the first is used")
    return seq[0]


def _required_float(item: pydicom.Dataset, keyword: str, tag: str, why: str) -> float:
    v = parse_float(_value(item, keyword), f"{keyword} {tag}")
    if v is None or v <= 0:
        raise InputError(f"{keyword} {tag} is missing or not positive: {why}")
    return v


def _datetime(ds: pydicom.Dataset, date_kw: str, date_tag: str, time_kw: str, time_tag: str) -> datetime:
    d, t = _value(ds, date_kw), _value(ds, time_kw)
    if d is None:
        raise InputError(f"{date_kw} {date_tag} is missing: needed for the decay time of the SUV")
    if t is None:
        raise InputError(f"{time_kw} {time_tag} is missing: needed for the decay time of the SUV")
    return combine(parse_da(d, f"{date_kw} {date_tag}"), parse_tm(t, f"{time_kw} {time_tag}"))


def _average_count_time_s(duration_s: float, half_life_s: float) -> float:
    """Time within a frame of ``duration_s`` at which the activity equals its frame average."""
    lam = math.log(2.0) / half_life_s
    x = lam * duration_s
    return math.log(x / -math.expm1(-x)) / lam


def _scan_datetimes(
    datasets: Sequence[pydicom.Dataset], half_life_s: float, warnings: list[str]
) -> tuple[list[datetime], str]:
    """The decay reference date-time of every frame, and the rule that gave it (see module doc)."""
    series_dt = _datetime(datasets[0], "SeriesDate", "(0008,0021)", "SeriesTime", "(0008,0031)")
    acquisitions = []
    for ds in datasets:
        if _value(ds, "AcquisitionTime") is None:
            acquisitions = []
            break
        d = _value(ds, "AcquisitionDate") or datasets[0].SeriesDate
        acquisitions.append(
            combine(
                parse_da(d, "AcquisitionDate (0008,0022)"), parse_tm(ds.AcquisitionTime, "AcquisitionTime (0008,0032)")
            )
        )
    if not acquisitions:
        warnings.append("AcquisitionTime (0008,0032) missing: Series Date/Time taken as the decay reference time")
        return [series_dt] * len(datasets), "series"
    if any(_value(ds, "AcquisitionDate") is None for ds in datasets):
        warnings.append("AcquisitionDate (0008,0022) missing: Series Date assumed for the acquisitions")
    earliest = min(acquisitions)
    if series_dt <= earliest:
        return [series_dt] * len(datasets), "series"

    ge = private_value(datasets[0], GE_GROUP, GE_CREATOR, GE_POST_INJECTION_DATETIME)
    if ge.value:
        if ge.warning:
            warnings.append(ge.warning)
        scan, tz = parse_dt(ge.value, f"GE post-injection date-time {ge.tag}")
        if tz:
            warnings.append(tz)
        warnings.append(
            f"Series Date/Time {series_dt.isoformat()} is after the first acquisition {earliest.isoformat()}: "
            f"decay reference taken from the GE private post-injection date-time {ge.tag} = {scan.isoformat()}"
        )
        return [scan] * len(datasets), "ge_private"

    frt = [parse_float(_value(ds, "FrameReferenceTime"), "FrameReferenceTime (0054,1300)") for ds in datasets]
    afd = [parse_float(_value(ds, "ActualFrameDuration"), "ActualFrameDuration (0018,1242)") for ds in datasets]
    if all(v is not None and v > 0 for v in frt) and all(v is not None and v > 0 for v in afd):
        scans = [
            acq + timedelta(seconds=_average_count_time_s(d / 1000.0, half_life_s) - r / 1000.0)
            for acq, r, d in zip(acquisitions, frt, afd)  # type: ignore[operator]
        ]
        warnings.append(
            f"Series Date/Time {series_dt.isoformat()} is after the first acquisition {earliest.isoformat()}: "
            "decay reference back-computed per frame from Acquisition Time, Frame Reference Time (0054,1300) "
            "and Actual Frame Duration (0018,1242) (QIBA)"
        )
        return scans, "frame_reference_time"

    warnings.append(
        f"Series Date/Time {series_dt.isoformat()} is after the first acquisition {earliest.isoformat()}: "
        "the earliest Acquisition Date/Time is taken as the decay reference"
    )
    return [earliest] * len(datasets), "earliest_acquisition"


def _injection_datetime(
    item: pydicom.Dataset, series_date: object, reference: datetime, warnings: list[str]
) -> datetime:
    start_dt = _value(item, "RadiopharmaceuticalStartDateTime")
    if start_dt is not None:
        inj, tz = parse_dt(start_dt, "RadiopharmaceuticalStartDateTime (0018,1078)")
        if tz:
            warnings.append(tz)
        return inj
    start_t = _value(item, "RadiopharmaceuticalStartTime")
    if start_t is None:
        raise InputError(
            "both RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime (0018,1072) "
            "are missing from the Radiopharmaceutical Information Sequence: the injection time is unknown"
        )
    if series_date in (None, ""):
        raise InputError("SeriesDate (0008,0021) is missing: needed to date RadiopharmaceuticalStartTime")
    inj = combine(
        parse_da(series_date, "SeriesDate (0008,0021)"),
        parse_tm(start_t, "RadiopharmaceuticalStartTime (0018,1072)"),
    )
    warnings.append(
        "RadiopharmaceuticalStartDateTime (0018,1078) absent: injection date taken from the Series Date "
        "with RadiopharmaceuticalStartTime (0018,1072)"
    )
    if inj > reference:
        inj -= timedelta(days=1)
        warnings.append(
            f"injection time {start_t} is after the scan time {reference.time().isoformat()} on the Series Date: "
            "the scan is taken to cross midnight (injection on the previous day)"
        )
    return inj


def _corrected_image(ds: pydicom.Dataset, needs_decay: bool, warnings: list[str]) -> None:
    raw = ds.get("CorrectedImage")
    items = raw if isinstance(raw, (list, pydicom.multival.MultiValue)) else [raw]
    values = [str(v).upper() for v in items] if raw else []
    if not values:
        warnings.append("CorrectedImage (0028,0051) empty or absent: attenuation and decay correction assumed")
        return
    shown = "\\".join(values)
    if "ATTN" not in values:
        raise InputError(
            f"CorrectedImage (0028,0051) = {shown} lacks ATTN: the image is not attenuation-corrected, "
            "so SUV is meaningless"
        )
    if "DECY" not in values and "DECAY" not in values:
        if needs_decay:
            raise InputError(
                f"CorrectedImage (0028,0051) = {shown} lacks DECY although DecayCorrection (0054,1102) "
                "is set: the header contradicts itself, SUV is not computed"
            )
        warnings.append("CorrectedImage (0028,0051) lacks DECY: the vendor SUV scaling is trusted as it is")


def _patient(ds: pydicom.Dataset, warnings: list[str]) -> tuple[float | None, float | None, str | None]:
    weight = parse_float(_value(ds, "PatientWeight"), "PatientWeight (0010,1030)")
    if weight is not None and weight <= 0:
        weight = None
    height = parse_float(_value(ds, "PatientSize"), "PatientSize (0010,1020)")
    if height is not None:
        if height <= 0:
            height = None
        elif height > 3.0:
            warnings.append(f"PatientSize (0010,1020) = {height:g} is taken to be in cm (DICOM uses metres)")
            height /= 100.0
    sex = _value(ds, "PatientSex")
    return weight, height, (str(sex).upper() if sex is not None else None)


# --------------------------------------------------------------------------- main entry


def _pixel_units(ds: pydicom.Dataset) -> str:
    """Units (0054,1001), upper-case: refused when absent or not one that SUV can be computed from."""
    units = _value(ds, "Units")
    if units is None:
        raise InputError("Units (0054,1001) is missing: the meaning of the pixel values is unknown")
    units = str(units).upper()
    if units not in {u.value for u in PixelUnits}:
        raise InputError(f"Units (0054,1001) = {units} cannot be converted to SUV (supported: BQML, CNTS, GML)")
    return units


def _conversion_path(
    datasets: Sequence[pydicom.Dataset], units: str, warnings: list[str]
) -> tuple[str, list[float | None], list[float | None]]:
    """Which rule gives SUVbw (``bqml``, ``gml``, ``philips_suv``, ``philips_acsf``), with the Philips factors of CNTS.

    Returns the path, the Philips SUV Scale Factors and Activity Concentration Scale Factors (empty unless CNTS).
    """
    if units != PixelUnits.CNTS.value:
        return units.lower(), [], []
    philips_suv = [private_value(ds, PHILIPS_GROUP, PHILIPS_CREATOR, PHILIPS_SUV_SCALE_FACTOR) for ds in datasets]
    philips_acsf = [
        private_value(ds, PHILIPS_GROUP, PHILIPS_CREATOR, PHILIPS_ACTIVITY_CONCENTRATION_SCALE_FACTOR)
        for ds in datasets
    ]
    suv_sf = [parse_float(p.value, f"Philips SUV Scale Factor {p.tag}") for p in philips_suv]
    acsf = [parse_float(p.value, f"Philips Activity Concentration Scale Factor {p.tag}") for p in philips_acsf]
    if all(v not in (None, 0.0) for v in suv_sf):
        path = "philips_suv"
    elif all(v not in (None, 0.0) for v in acsf):
        path = "philips_acsf"
    else:
        raise InputError(
            "Units (0054,1001) is CNTS but neither the Philips private SUV Scale Factor (7053,1000) nor the "
            f"Activity Concentration Scale Factor (7053,1009) (private creator '{PHILIPS_CREATOR}') is present "
            "and non-zero in every instance: counts cannot be converted to SUV"
        )
    for p in philips_suv if path == "philips_suv" else philips_acsf:
        if p.warning and p.warning not in warnings:
            warnings.append(p.warning)
    return path, suv_sf, acsf


@dataclass(frozen=True)
class _DecayedDose:
    """The injected dose and the decay time of every frame, kept together for :class:`SUVFactors`' record."""

    dose_bq: float
    half_life_s: float | None
    decay_times_s: tuple[float, ...]
    injection: datetime | None = None
    scan0: datetime | None = None
    scan_time_source: str | None = None

    def per_frame(self) -> list[float]:
        """The dose at each frame's decay reference time (the dose itself where no time passed)."""
        dose, half_life = self.dose_bq, self.half_life_s
        return [dose * 2.0 ** (-dt / half_life) if dt else dose for dt in self.decay_times_s]  # type: ignore[operator]


def _check_decay_inputs(weight: float | None, decay: str | None) -> None:
    """Refuse, before reading the dose, a series whose weight or Decay Correction leaves SUVbw undefined."""
    if weight is None:
        raise InputError("PatientWeight (0010,1030) is missing or zero: SUVbw needs the body weight")
    if decay is None:
        raise InputError(
            "DecayCorrection (0054,1102) is missing: the time the pixels are decay-corrected to is unknown"
        )
    if decay == DecayCorrection.NONE.value:
        raise InputError(
            "DecayCorrection (0054,1102) is NONE: the pixels are not decay-corrected, so every frame would "
            "need its own decay correction; SUV is not computed for such series"
        )
    if decay not in (DecayCorrection.START.value, DecayCorrection.ADMIN.value):
        raise InputError(f"DecayCorrection (0054,1102) = {decay} is not START, ADMIN or NONE")


def _injected_dose(item: pydicom.Dataset, warnings: list[str]) -> float:
    """Radionuclide Total Dose (0018,1074), with a warning when it looks like MBq written as Bq."""
    dose = _required_float(item, "RadionuclideTotalDose", "(0018,1074)", "SUV divides by the injected dose")
    if dose < 1e4:
        warnings.append(
            f"RadionuclideTotalDose (0018,1074) = {dose:g} Bq is implausibly small (MBq written instead of Bq?)"
        )
    return dose


def _decay_since_injection(
    datasets: Sequence[pydicom.Dataset], item: pydicom.Dataset, dose: float, warnings: list[str]
) -> _DecayedDose:
    """Decay Correction START: the time from the injection to each frame's decay reference (module doc's rules)."""
    half_life = _required_float(item, "RadionuclideHalfLife", "(0018,1075)", "needed to decay the dose")
    scans, source = _scan_datetimes(datasets, half_life, warnings)
    injection = _injection_datetime(item, datasets[0].get("SeriesDate"), min(scans), warnings)
    decays = [seconds(s - injection) for s in scans]
    if min(decays) < 0:
        raise InputError(
            f"the injection time {injection.isoformat()} is after the scan time {min(scans).isoformat()}: "
            "the decay time would be negative"
        )
    if max(decays) > 10 * half_life:
        warnings.append(f"decay time {max(decays) / 3600:.1f} h exceeds 10 half-lives: check the injection date")
    return _DecayedDose(dose, half_life, tuple(decays), injection, scans[0], source)


def _decayed_dose(datasets: Sequence[pydicom.Dataset], decay: str, warnings: list[str]) -> _DecayedDose:
    """The dose that SUVbw divides by, per frame: undecayed for ADMIN, decayed to the scan for START."""
    item = _radiopharmaceutical(datasets[0], warnings)
    dose = _injected_dose(item, warnings)
    if decay != DecayCorrection.ADMIN.value:
        return _decay_since_injection(datasets, item, dose, warnings)
    half_life = parse_float(_value(item, "RadionuclideHalfLife"), "RadionuclideHalfLife (0018,1075)")
    warnings.append(
        "DecayCorrection ADMIN: pixels are decay-corrected to the administration time, so the injected "
        "dose is used undecayed"
    )
    return _DecayedDose(dose, half_life, (0.0,) * len(datasets))


def _vendor_suvbw(
    ds: pydicom.Dataset, decay: str | None, weight: float | None, height: float | None, n: int, warnings: list[str]
) -> list[float] | None:
    """Units GML (already SUV): the SUVbw factor of each of the ``n`` frames that SUV Type implies, or None."""
    suv_type = str(ds.get("SUVType", "") or "").upper()
    if decay == DecayCorrection.NONE.value:
        warnings.append("Units GML with DecayCorrection NONE: the vendor SUV is used as it is")
    if suv_type in ("", "BW"):
        if not suv_type:
            warnings.append("Units GML without SUV Type (0054,1006): the pixels are assumed to be SUVbw already")
        else:
            warnings.append("Units GML with SUV Type BW: the vendor's SUVbw is used as it is (factor 1)")
        return [1.0] * n
    if suv_type == "BSA" and weight is not None and height is not None:
        factors = [1000.0 * weight / (1e4 * body_surface_area_dubois(weight, height))] * n
        warnings.append("Units GML with SUV Type BSA: SUVbw obtained as SUVbsa * weight / BSA (Du Bois)")
        return factors
    warnings.append(
        f"Units GML with SUV Type (0054,1006) = {suv_type}: conversion to SUVbw not supported; suvbw, sul "
        "and suvbsa not computed"
    )
    return None


def _flavours(
    frame_bw: list[float] | None, weight: float | None, height: float | None, sex: str | None, warnings: list[str]
) -> tuple[dict[SUVType, tuple[float, ...]], float | None, float | None]:
    """SUVbw, and SUL and SUVbsa derived from it where weight, height and sex allow; with the LBM and BSA used."""
    factors: dict[SUVType, tuple[float, ...]] = {}
    lbm = bsa = None
    if frame_bw is None:
        return factors, lbm, bsa
    factors[SUVType.BW] = tuple(frame_bw)
    if weight is None:
        warnings.append("PatientWeight (0010,1030) missing: sul and suvbsa not computed")
    elif height is None:
        warnings.append(
            "PatientSize (0010,1020) missing: sul (Janmahasatian LBM) and suvbsa (Du Bois BSA) need the height"
        )
    else:
        bsa = body_surface_area_dubois(weight, height)
        factors[SUVType.BSA] = tuple(f * (1e4 * bsa) / (1000.0 * weight) for f in frame_bw)
        if sex in ("M", "F"):
            lbm = lean_body_mass_janmahasatian(weight, height, sex)
            factors[SUVType.SUL] = tuple(f * lbm / weight for f in frame_bw)
        else:
            warnings.append(f"PatientSex (0010,0040) = {sex or 'absent'}: sul (Janmahasatian LBM) needs M or F")
    return factors, lbm, bsa


def compute_suv_factors(datasets: Sequence[pydicom.Dataset]) -> SUVFactors:
    """Compute the SUVbw, SUL and SUVbsa factors of every frame of one PET series.

    Parameters
    ----------
    datasets
        The instances of one PET series (headers suffice; pixel data is not read), in any
        order; the per-frame factors follow this order.

    Returns
    -------
    SUVFactors
        Factors that multiply rescaled pixel values into SUV, per frame and flavour, with every
        assumption in ``warnings`` (see the module documentation for the rules).

    Raises
    ------
    InputError
        When the instances are not one PET series, or a value needed for SUVbw is missing or
        contradictory; the message names the attribute and its tag. A missing value needed only
        for SUL or SUVbsa (height, sex) is a warning and that flavour is left out.
    """
    if not datasets:
        raise InputError("no instances given: SUV needs the headers of a PET series")
    ds0 = datasets[0]
    modality = str(ds0.get("Modality", ""))
    if modality != "PT":
        raise InputError(f"Modality (0008,0060) is {modality or 'absent'}, not PT: SUV applies to PET only")
    _consistency(datasets)
    warnings: list[str] = []
    uids = tuple(str(ds.get("SOPInstanceUID", "")) for ds in datasets)
    units = _pixel_units(ds0)
    decay = _value(ds0, "DecayCorrection")
    decay = str(decay).upper() if decay is not None else None
    weight, height, sex = _patient(ds0, warnings)

    # which path, and does it need the decay computation?
    path, suv_sf, acsf = _conversion_path(datasets, units, warnings)
    needs_decay = path in ("bqml", "philips_acsf")
    _corrected_image(ds0, needs_decay, warnings)

    frame_bw: list[float] | None
    decayed: _DecayedDose | None = None
    if needs_decay:
        _check_decay_inputs(weight, decay)
        decayed = _decayed_dose(datasets, decay, warnings)  # type: ignore[arg-type]
        frame_bw = [1000.0 * weight / d for d in decayed.per_frame()]  # type: ignore[operator]
        if path == "philips_acsf":
            frame_bw = [a * f for a, f in zip(acsf, frame_bw)]  # type: ignore[operator]
            warnings.append(
                "Philips CNTS: Activity Concentration Scale Factor (7053,1009) converts rescaled counts to Bq/ml"
            )
    elif path == "philips_suv":
        frame_bw = list(suv_sf)  # type: ignore[arg-type]
        warnings.append("Philips CNTS: the private SUV Scale Factor (7053,1000) is used as the SUVbw factor as it is")
    else:  # GML
        frame_bw = _vendor_suvbw(ds0, decay, weight, height, len(datasets), warnings)

    factors, lbm, bsa = _flavours(frame_bw, weight, height, sex, warnings)
    result = SUVFactors(
        units=units,
        decay_correction=decay,
        sop_instance_uids=uids,
        frame_factors=factors,
        warnings=tuple(warnings),
        weight_kg=weight,
        height_m=height,
        sex=sex,
        lbm_kg=lbm,
        bsa_m2=bsa,
        injected_dose_bq=decayed.dose_bq if decayed else None,
        half_life_s=decayed.half_life_s if decayed else None,
        injection_datetime=decayed.injection if decayed else None,
        scan_datetime=decayed.scan0 if decayed else None,
        decay_time_s=decayed.decay_times_s[0] if decayed else None,
        scan_time_source=decayed.scan_time_source if decayed else None,
    )
    return _noting_varying_factors(result)


def _noting_varying_factors(result: SUVFactors) -> SUVFactors:
    """Add the warning that a flavour differs between frames, so that no single value of it is reported."""
    varying = [t.label for t in result.frame_factors if result.varies_per_frame(t)]
    if not varying:
        return result
    extra = (
        f"the {', '.join(varying)} factor differs between frames: no single value is reported, "
        "the per-frame factors are applied"
    )
    return _with_warning(result, extra)


def _with_warning(factors: SUVFactors, warning: str) -> SUVFactors:
    return replace(factors, warnings=factors.warnings + (warning,))


def apply_suv(
    pet: Image,
    factors: SUVFactors,
    suv_type: SUVType = SUVType.BW,
    dtype: Any = np.float32,
) -> Image:
    """Convert a rescaled PET volume to SUV, slice by slice.

    Parameters
    ----------
    pet
        PET volume after Rescale Slope/Intercept. When its ``metadata["sop_instance_uids"]``
        lists the instance of each slice ``k``, slice ``k`` gets that instance's factor; without
        it, the series must have a single factor.
    factors
        From :func:`compute_suv_factors` for the same series.
    suv_type
        The flavour to produce.
    dtype
        Voxel type of the result (float32 halves the memory of a whole-body volume; SUV needs
        no more than its 7 significant digits).

    Returns
    -------
    Image
        ``SUV[k, j, i] = f_k * pet[k, j, i]`` on the same grid, with metadata ``units`` (the UCUM
        code), ``quantity`` and ``suv_type``.

    Raises
    ------
    InputError
        When the flavour cannot be computed, or factors differ per frame and the slice order
        is unknown.
    """
    uids = pet.metadata.get("sop_instance_uids")
    if uids is not None and len(uids) == pet.array.shape[0]:
        per_slice = factors.for_instances(uids, suv_type)
    else:
        single = factors.factor(suv_type)
        if single is None:
            if factors.frames(suv_type) is None:
                raise factors.unavailable(suv_type)
            raise InputError(
                f"the {suv_type.label} factor differs between frames and the PET volume does not list its "
                "slices' SOP Instance UIDs (metadata 'sop_instance_uids')"
            )
        per_slice = np.full(pet.array.shape[0], single)
    array = (pet.array.astype(np.float64) * per_slice[:, None, None]).astype(dtype)
    meta = {**pet.metadata, "units": suv_type.ucum, "quantity": suv_type.label, "suv_type": suv_type.key}
    return Image(array, pet.spacing, pet.origin, pet.direction.copy(), meta)


__all__ = [
    "SAME_FACTOR_RTOL",
    "SUVFactors",
    "apply_suv",
    "body_surface_area_dubois",
    "compute_suv_factors",
    "lean_body_mass_janmahasatian",
]
