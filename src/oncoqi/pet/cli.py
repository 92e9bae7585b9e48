"""``oncoqi pet suv|indices|segment|transfer``: SUV factors, PET-IndiC indices, lesion segmentation.

``oncoqi pet suv DIR --json`` prints ``{"suvbw", "sul", "suvbsa", "units", "decay_correction",
"warnings", ...}``: each factor converts rescaled pixel values to that SUV (null when it cannot be
computed or differs per frame, with the reason in ``warnings``). ``--rwvm FILE`` also writes the
factors as a DICOM Real World Value Mapping object, ``--suv-volume FILE`` the SUV volume.

``oncoqi pet indices --pet DIR --labels FILE --json`` prints one object per label (label map) or
segment (DICOM SEG) with the keys of :class:`oncoqi.pet.indices.PETIndices`, computed on the
SUVbw volume unless ``--suv sul|bsa``; ``--report DIR`` also writes them as ``seg.dcm`` +
``sr.dcm`` (DICOM SEG and TID 1500 SR, :mod:`oncoqi.report.pet`).

``oncoqi pet segment --pet DIR (--seed X Y Z | --region FILE [--label N]) --method
fixed|percent|background --value V --out FILE`` writes a threshold segmentation of the SUV volume
(:mod:`oncoqi.pet.segment`) as a label map (value 1) on the PET grid.

``oncoqi pet transfer --labels CT_LABEL --pet DIR --out FILE`` brings a label map on another grid
(e.g. a CT tumour label) onto the PET grid, by default keeping each label where it covers at
least half of a PET voxel (``--method fraction``), so that volumes are preserved.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from oncoqi.atomic import write_volume
from oncoqi.dicom import read_label_file
from oncoqi.errors import InputError
from oncoqi.image import Image, require_labelled, require_overlap
from oncoqi.jsonio import strict
from oncoqi.pet.enums import SUVType
from oncoqi.pet.indices import PETIndices, compute_indices
from oncoqi.pet.labels import read_segments
from oncoqi.pet.rwvm import write_rwvm
from oncoqi.pet.segment import (
    SEARCH_RADIUS_MM,
    SHELL_MM,
    ThresholdMethod,
    ThresholdOptions,
    threshold_segment,
    transfer_labels,
)
from oncoqi.pet.series import PETSeries, load_pet_series
from oncoqi.pet.suv import apply_suv, compute_suv_factors

#: ``oncoqi pet --help``: plain text, shown as written.
DESCRIPTION = """\
Measure PET: SUV, PET-IndiC indices, threshold lesions, CT labels on PET.

The commands compute the SUV factors of a PET series, the PET-IndiC indices of
segments, a lesion segmented by an SUV threshold, and bring CT labels onto the
PET grid. The PET is a DICOM series (SUV comes from its headers); every
assumption made in computing the SUV is reported as a warning.
"""
EPILOG = """\
Examples:
  oncoqi pet suv PET_DIR
  oncoqi pet indices --pet PET_DIR --labels pet_label.nrrd --json
  oncoqi pet segment --pet PET_DIR --seed -40 25 -180 --method percent \\
      --value 41 --out lesion.nrrd
  oncoqi pet transfer --labels lesions/tumor_label.nrrd --pet PET_DIR \\
      --out pet_label.nrrd
"""

#: ``oncoqi pet suv --help``.
SUV_DESCRIPTION = """\
Compute the SUV factors (SUVbw, SUL, SUVbsa) of a PET series from its headers.

Each factor converts rescaled pixel values to that SUV; it is missing (null
in --json) when it cannot be computed or differs per frame, with the reason
as a warning. --json prints suvbw, sul, suvbsa, units, decay_correction and
warnings. --rwvm also writes the factors as a DICOM Real World Value Mapping
object, --suv-volume the SUV volume itself.
"""
SUV_EPILOG = """\
Examples:
  oncoqi pet suv PET_DIR
  oncoqi pet suv PET_DIR --json --suv-volume suv.nrrd --suv sul
"""

#: ``oncoqi pet indices --help``.
INDICES_DESCRIPTION = """\
Compute the PET-IndiC indices of each segment on the PET's SUV volume.

SUVmax, SUVmean, SUVpeak, MTV, TLG, quartiles, SAM and more. One result per
label value (label map) or segment (DICOM SEG), computed on the SUVbw volume
unless --suv sul or bsa. --json keys: label, suv_mean, suv_std, suv_min,
suv_max, rms, mtv_ml, q1, median, q3, upper_adjacent, tlg, glycolysis_q1..q4,
distribution_q1..q4, sam, sam_background, suv_peak, suv_peak_lps_mm,
voxel_count, units, warnings. --report DIR also writes them as DIR/seg.dcm and
DIR/sr.dcm (DICOM SEG + SR TID 1500).
"""
INDICES_EPILOG = """\
Examples:
  oncoqi pet indices --pet PET_DIR --labels pet_label.nrrd
  oncoqi pet indices --pet PET_DIR --labels seg.dcm --label 1 --json \\
      --report pet_report
"""

#: ``oncoqi pet segment --help``.
SEGMENT_DESCRIPTION = """\
Segment a PET lesion by an SUV threshold, from a seed point or in a region.

The lesion is written as a label map (value 1) on the PET grid.

Methods (voxels with SUV >= T are kept):
  fixed       T = V (an SUV, e.g. 2.5)
  percent     T = V/100 x the local SUVmax (e.g. 41 or 50)
  background  T = bg + V/100 x (local SUVmax - bg); bg is --background, else
              the mean SUV of a shell of --shell mm around the lesion
The local region is --region (all non-zero voxels, or --label N) or the ball
of --search-radius mm around the seed (LPS mm). With a seed, the connected
component holding the seed is kept; a seed below T moves to the hottest
voxel of the ball, with a warning.
"""
SEGMENT_EPILOG = """\
Examples:
  oncoqi pet segment --pet PET_DIR --seed -40 25 -180 --method percent \\
      --value 41 --out lesion.nrrd
  oncoqi pet segment --pet PET_DIR --region pet_label.nrrd --label 1 \\
      --method background --value 50 --out lesion.nrrd --json
"""

#: ``oncoqi pet transfer --help``.
TRANSFER_DESCRIPTION = """\
Bring a label map on another grid (e.g. a CT tumour label) onto the PET grid.

fraction (default) keeps each label where it covers at least half of a PET
voxel, so that volumes are preserved; nearest is plain nearest neighbour.
Prints each label's volume before and after.
"""
TRANSFER_EPILOG = """\
Examples:
  oncoqi pet transfer --labels lesions/tumor_label.nrrd --pet PET_DIR \\
      --out pet_label.nrrd
  oncoqi pet transfer --labels ct_label.nii.gz --pet PET_DIR --method nearest \\
      --out pet_label.nii.gz
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi pet`` and its sub-commands."""
    parser = sub.add_parser(
        "pet",
        help="PET SUV normalisation, PET-IndiC indices and threshold segmentation",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    psub = parser.add_subparsers(dest="pet_command", metavar="ACTION")
    psub.required = True
    _add_suv_parser(psub)
    _add_indices_parser(psub)
    _add_segment_parser(psub)
    _add_transfer_parser(psub)


def _add_suv_parser(psub: argparse._SubParsersAction) -> None:
    """``oncoqi pet suv``: the SUV factors of a PET series, optionally as an RWVM or an SUV volume."""
    suv = psub.add_parser(
        "suv",
        help="SUV scale factors (SUVbw, SUL, SUVbsa) from the PET headers",
        description=SUV_DESCRIPTION,
        epilog=SUV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    suv.add_argument("path", metavar="DIR", help="folder holding the PET series")
    suv.add_argument("--series-uid", help="SeriesInstanceUID, when DIR holds several PET series")
    suv.add_argument("--json", action="store_true", help="print JSON instead of text")
    suv.add_argument("--rwvm", metavar="FILE", help="write the factors as a DICOM Real World Value Mapping object")
    suv.add_argument("--suv-volume", metavar="FILE", help="write the SUV volume (NRRD/NIfTI/MHA by extension)")
    suv.add_argument("--suv", default="bw", choices=["bw", "sul", "bsa"], help="flavour of --suv-volume (default bw)")
    suv.add_argument("--force", action="store_true", help="replace an existing --suv-volume file")
    suv.set_defaults(func=_suv, output_files=("suv_volume",))


def _add_indices_parser(psub: argparse._SubParsersAction) -> None:
    """``oncoqi pet indices``: the PET-IndiC indices of each segment, optionally as a SEG + SR report."""
    ind = psub.add_parser(
        "indices",
        help="PET-IndiC indices of each segment on the SUV volume",
        description=INDICES_DESCRIPTION,
        epilog=INDICES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ind.add_argument("--pet", required=True, metavar="DIR", help="folder holding the PET series")
    ind.add_argument("--labels", required=True, metavar="FILE", help="label map (NRRD/NIfTI/MHA) or DICOM SEG")
    ind.add_argument("--label", type=int, metavar="N", help="only this label value / SEG segment number")
    ind.add_argument("--suv", default="bw", choices=["bw", "sul", "bsa"], help="SUV flavour (default bw)")
    ind.add_argument("--series-uid", help="SeriesInstanceUID, when DIR holds several PET series")
    ind.add_argument(
        "--peak-within-segment",
        action="store_true",
        help="SUVpeak only where the whole 1 ml sphere is inside the segment (PET-IndiC's rule)",
    )
    ind.add_argument("--json", action="store_true", help="print JSON instead of text")
    ind.add_argument("--report", metavar="DIR", help="also write seg.dcm and sr.dcm (DICOM SEG + TID 1500 SR) into DIR")
    ind.add_argument("--force", action="store_true", help="replace seg.dcm and sr.dcm already in --report")
    ind.set_defaults(
        func=_indices,
        output_folders=("report",),
        results={"report": ("seg.dcm", "sr.dcm")},
        run_command="pet indices",
        input_arg="pet",
    )


def _add_segment_parser(psub: argparse._SubParsersAction) -> None:
    """``oncoqi pet segment``: a threshold segmentation from a seed or in a region, with its settings."""
    seg = psub.add_parser(
        "segment",
        help="threshold segmentation of a lesion on the SUV volume",
        description=SEGMENT_DESCRIPTION,
        epilog=SEGMENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seg.add_argument("--pet", required=True, metavar="DIR", help="folder holding the PET series")
    where = seg.add_mutually_exclusive_group(required=True)
    where.add_argument("--seed", nargs=3, type=float, metavar=("X", "Y", "Z"), help="seed point, LPS mm")
    where.add_argument("--region", metavar="FILE", help="label map (NRRD/NIfTI/MHA) restricting the segment")
    seg.add_argument("--label", type=int, metavar="N", help="with --region: only this label value (default any)")
    seg.add_argument(
        "--method",
        required=True,
        choices=[m.value for m in ThresholdMethod],
        help="fixed: SUV >= V; percent: SUV >= V%% of the local SUVmax; background: SUV >= bg + V%% (SUVmax - bg)",
    )
    seg.add_argument("--value", required=True, type=float, metavar="V", help="SUV (fixed) or percentage")
    seg.add_argument("--background", type=float, metavar="SUV", help="background SUV (default: mean of a shell)")
    seg.add_argument(
        "--search-radius",
        type=float,
        default=SEARCH_RADIUS_MM,
        metavar="MM",
        help=f"ball around the seed where the local SUVmax is sought (default {SEARCH_RADIUS_MM:g})",
    )
    seg.add_argument(
        "--shell",
        type=float,
        default=SHELL_MM,
        metavar="MM",
        help=f"thickness of the background shell (default {SHELL_MM:g})",
    )
    seg.add_argument("--suv", default="bw", choices=["bw", "sul", "bsa"], help="SUV flavour (default bw)")
    seg.add_argument("--series-uid", help="SeriesInstanceUID, when DIR holds several PET series")
    seg.add_argument("--out", required=True, metavar="FILE", help="label map to write (NRRD/NIfTI/MHA)")
    seg.add_argument("--json", action="store_true", help="print JSON instead of text")
    seg.add_argument("--force", action="store_true", help="replace an existing --out file")
    seg.set_defaults(func=_segment, output_files=("out",))


def _add_transfer_parser(psub: argparse._SubParsersAction) -> None:
    """``oncoqi pet transfer``: a label map brought onto the PET grid."""
    tr = psub.add_parser(
        "transfer",
        help="bring a label map (e.g. a CT tumour label) onto the PET grid",
        description=TRANSFER_DESCRIPTION,
        epilog=TRANSFER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tr.add_argument("--labels", required=True, metavar="CT_LABEL", help="label map (NRRD/NIfTI/MHA) on its own grid")
    tr.add_argument("--pet", required=True, metavar="DIR", help="folder holding the PET series")
    tr.add_argument(
        "--method",
        default="fraction",
        choices=["fraction", "nearest"],
        help="fraction: label where it covers >= half a PET voxel (default); nearest: nearest neighbour",
    )
    tr.add_argument("--series-uid", help="SeriesInstanceUID, when DIR holds several PET series")
    tr.add_argument("--out", required=True, metavar="FILE", help="label map on the PET grid to write")
    tr.add_argument("--force", action="store_true", help="replace an existing --out file")
    tr.set_defaults(func=_transfer, output_files=("out",))


def _suv(args: argparse.Namespace) -> int:
    series = load_pet_series(args.path, args.series_uid)
    factors = compute_suv_factors(series.datasets)
    out = factors.to_dict()
    if args.rwvm:
        out["rwvm_file"] = str(write_rwvm(args.rwvm, series.datasets, factors))
    if args.suv_volume:
        volume = apply_suv(series.image, factors, SUVType.parse(args.suv))
        write_volume(volume, args.suv_volume)
        out["suv_volume_file"] = args.suv_volume
    if args.json:
        print(json.dumps(strict(out), indent=2))
    else:
        for t in SUVType:
            f = factors.factor(t)
            print(f"{t.label:14s} {f:.9g} {t.ucum} per rescaled unit" if f is not None else f"{t.label:14s} -")
        print(f"Units {factors.units}, DecayCorrection {factors.decay_correction or '-'}")
        for w in factors.warnings:
            print(f"warning: {w}")
        for key in ("rwvm_file", "suv_volume_file"):
            if key in out:
                print(f"wrote {out[key]}")
    return 0


def _load_suv(pet: str, series_uid: str | None, flavour: str) -> tuple[PETSeries, Image, tuple[str, ...]]:
    """The PET series, its SUV volume of ``flavour`` and the SUV warnings."""
    suv_type = SUVType.parse(flavour)
    series = load_pet_series(pet, series_uid)
    factors = compute_suv_factors(series.datasets)
    if factors.frames(suv_type) is None:
        raise factors.unavailable(suv_type)
    return series, apply_suv(series.image, factors, suv_type), tuple(factors.warnings)


def _read_labels_on(path: str, pet: Image) -> Image:
    """A label map that has a labelled voxel within the PET image; else one line that says which is wrong."""
    labels = read_label_file(path)
    require_labelled(labels, path)
    require_overlap(labels, pet, path, "PET image")
    return labels


def _indices(args: argparse.Namespace) -> int:
    _, suv, suv_warnings = _load_suv(args.pet, args.series_uid, args.suv)
    segments = read_segments(args.labels, suv, args.label)
    if not segments:
        raise InputError(f"{args.labels}: no non-empty segment on the PET grid")
    results: list[PETIndices] = []
    for seg in segments:
        r = compute_indices(suv, seg.mask, seg.value, kernel_within_segment=args.peak_within_segment)
        notes = tuple(f"SUV: {w}" for w in suv_warnings) + seg.warnings + r.warnings
        results.append(dataclasses.replace(r, label=seg.label, warnings=notes))
    if args.report:
        from oncoqi.report.pet import write_indices_report  # the DICOM writers load only when asked

        masks = [(s.name or f"label {s.label}", s.mask, s.value) for s in segments]
        written = write_indices_report(
            args.pet,
            masks,
            results,
            args.report,
            SUVType.parse(args.suv),
            series_uid=args.series_uid,
            algorithms=[s.algorithm for s in segments],  # a SEG's own; a label map's origin is unknown (MANUAL)
        )
        print(f"wrote {written.seg_path} and {written.sr_path}", file=sys.stderr)
    if args.json:
        print(json.dumps(strict([r.to_dict() for r in results]), indent=2))
    else:
        keys = [k for k in PETIndices.keys() if k not in ("label", "warnings", "units", "suv_peak_lps_mm")]
        for r in results:
            print(f"label {r.label} ({r.units})")
            d = r.to_dict()
            for k in keys:
                v = d[k]
                print(f"  {k:18s} {v:.6g}" if isinstance(v, float) else f"  {k:18s} {v if v is not None else '-'}")
            if r.suv_peak_lps_mm is not None:
                print("  suv_peak_lps_mm    " + ", ".join(f"{x:.2f}" for x in r.suv_peak_lps_mm))
            for w in r.warnings:
                print(f"  warning: {w}")
    return 0


def _segment(args: argparse.Namespace) -> int:
    _, suv, suv_warnings = _load_suv(args.pet, args.series_uid, args.suv)
    region: Image | None = None
    notes: list[str] = []
    if args.label is not None and not args.region:
        raise InputError("--label selects a label of --region; give --region too")
    if args.region:
        region = _read_labels_on(args.region, suv)
        if not suv.same_grid(region):
            region = transfer_labels(region, suv, "nearest")
            notes.append(f"{args.region} resampled onto the PET grid (nearest neighbour)")
    result = threshold_segment(
        suv,
        args.method,
        args.value,
        region=region,
        region_label=args.label,
        seed_lps=tuple(args.seed) if args.seed else None,
        options=ThresholdOptions(background=args.background, search_radius_mm=args.search_radius, shell_mm=args.shell),
    )
    write_volume(result.mask, args.out)
    out = {
        "out": args.out,
        "method": result.method.value,
        "value": result.value,
        "threshold": result.threshold,
        "local_max": result.local_max,
        "background": result.background,
        "seed_ijk": list(result.seed_ijk) if result.seed_ijk is not None else None,
        "voxel_count": result.voxel_count,
        "volume_ml": result.voxel_count * suv.voxel_volume_ml,
        "units": str(suv.metadata.get("units", "")),
        "warnings": [f"SUV: {w}" for w in suv_warnings] + notes + list(result.warnings),
    }
    if args.json:
        print(json.dumps(strict(out), indent=2))
    else:
        print(
            f"{args.out}: {out['voxel_count']} voxels, {out['volume_ml']:.4g} ml, threshold {result.threshold:.4g} "
            f"({out['units']}), local max {result.local_max:.4g}"
        )
        for w in out["warnings"]:
            print(f"warning: {w}")
    return 0


def _transfer(args: argparse.Namespace) -> int:
    series = load_pet_series(args.pet, args.series_uid)
    labels = _read_labels_on(args.labels, series.image)
    out = transfer_labels(labels, series.image, args.method)
    write_volume(out, args.out)
    for v in (int(x) for x in np.unique(labels.array) if x != 0):
        before = float(np.count_nonzero(labels.array == v)) * labels.voxel_volume_ml
        after = float(np.count_nonzero(out.array == v)) * out.voxel_volume_ml
        print(f"label {v}: {before:.4g} ml -> {after:.4g} ml on the PET grid")
    return 0
