"""``oncoqi phantom ct|petct --out DIR --seed N``: write a synthetic thorax study with ground truth."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import TypeVar

from oncoqi.phantom.options import PhantomOptionError, PhantomOptions, TumourSpec
from oncoqi.phantom.output import write_study
from oncoqi.phantom.study import make_ct, make_petct
from oncoqi.phantom.tumours import LOCATIONS, SHAPES

_T = TypeVar("_T")

#: ``oncoqi phantom --help``: plain text, shown as written.
DESCRIPTION = """\
Write a synthetic thorax CT or PET/CT study with exact ground truth.

ct writes a CT series, petct a CT and a PET series, as real DICOM, with the
true tumour labels, lung mask and true SUVs beside them: test data on which
every other command's right answer is known.
"""
EPILOG = """\
Output:
  DIR/CT/*.dcm                 CT series, one file per slice
  DIR/PET/*.dcm                PET series in Bq/ml with every SUV tag (petct)
  DIR/truth/tumor_label.nrrd   0 background, 1..n tumours, on the CT grid
  DIR/truth/lung_mask.nrrd     0 outside, 1 right lung, 2 left lung (CT grid)
  DIR/truth/tissue_label.nrrd  tissue classes, on the CT grid
  DIR/truth/truth.json         seed, options; per tumour its volume, centre,
                               location, shape and side; per PET region its
                               activity (Bq/ml) and true SUVbw

The lists (--volumes, --shapes, --locations, --tumour-suv, --solid-fractions)
give one value per tumour, or one value for all. Anything not given is drawn
from the seed; the same options and seed always give the same study, UIDs
included.

Examples:
  oncoqi phantom petct --out phantom7 --seed 7
  oncoqi phantom ct --out ct3 --seed 3 --tumours 2 --volumes 20 5 \\
      --locations chest_wall parenchyma
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi phantom``."""
    parser = sub.add_parser(
        "phantom",
        help="write a synthetic thorax CT or PET/CT study with exact ground truth",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=("ct", "petct"), help="ct: CT series only; petct: CT and PET series")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: %(default)s)")
    parser.add_argument(
        "--force", "--overwrite", dest="overwrite", action="store_true", help="replace a study already written in DIR"
    )

    d = PhantomOptions()
    _add_tumour_options(parser)
    _add_ct_options(parser, d)
    _add_pet_options(parser, d)
    _add_patient_options(parser)
    parser.set_defaults(
        func=run, output_folders=("out",), results={"out": ("CT", "PET", "truth")}, run_command="phantom"
    )


def _add_tumour_options(parser: argparse.ArgumentParser) -> None:
    """The tumours' count and per-tumour lists, which options_from_args turns into TumourSpecs."""
    tumours = parser.add_argument_group("tumours")
    tumours.add_argument(
        "--tumours", type=int, metavar="N", help="number of tumours, 0 for none (default: length of the lists, or 1)"
    )
    tumours.add_argument(
        "--volumes",
        type=float,
        nargs="+",
        metavar="ML",
        help="tumour volumes in ml, 1-300 (default: random, 1-30 in parenchyma, else 2-60)",
    )
    tumours.add_argument(
        "--shapes",
        nargs="+",
        choices=SHAPES,
        metavar="SHAPE",
        help=f"tumour shapes: {', '.join(SHAPES)} (default: random)",
    )
    tumours.add_argument(
        "--locations",
        nargs="+",
        type=lambda s: s.replace("-", "_"),
        choices=LOCATIONS,
        metavar="LOCATION",
        help=f"tumour locations: {', '.join(LOCATIONS)} (default: random)",
    )
    tumours.add_argument(
        "--tumour-suv", type=float, nargs="+", metavar="SUV", help="true tumour SUVbw in the PET (default: random 3-12)"
    )
    tumours.add_argument(
        "--solid-fractions",
        type=float,
        nargs="+",
        metavar="F",
        help="share of each tumour's radius that is solid, the rest ground glass: 1 solid (default), "
        "0 pure ground glass, between: part-solid",
    )


def _add_ct_options(parser: argparse.ArgumentParser, d: PhantomOptions) -> None:
    """The CT grid (matrix, field of view, slices or z extent) and image quality, with d's defaults."""
    ct = parser.add_argument_group("CT")
    ct.add_argument("--size", type=int, default=d.size, metavar="PX", help="CT pixels per side (default: %(default)s)")
    ct.add_argument(
        "--fov", type=float, default=d.fov_mm, metavar="MM", help="CT field of view (default: %(default)s mm)"
    )
    ct.add_argument(
        "--slice-thickness",
        type=float,
        default=d.slice_thickness_mm,
        metavar="MM",
        help="CT slice thickness and spacing, 1-5 mm (default: %(default)s)",
    )
    extent = ct.add_mutually_exclusive_group()
    extent.add_argument(
        "--slices", type=int, metavar="N", help=f"number of CT slices, centred on the lungs (default: {d.slices})"
    )
    extent.add_argument("--z-extent", type=float, metavar="MM", help="CT z extent instead of --slices")
    ct.add_argument(
        "--noise", type=float, default=d.noise_hu, metavar="HU", help="CT noise SD (default: %(default)s HU)"
    )
    ct.add_argument(
        "--blur",
        type=float,
        default=d.blur_mm,
        metavar="MM",
        help="CT blur FWHM; 0 turns off blur and partial-volume averaging (default: %(default)s mm)",
    )
    ct.add_argument(
        "--contrast",
        type=float,
        default=d.contrast_hu,
        metavar="HU",
        help="intravenous contrast: how far blood rises, e.g. 150 (default: %(default)s, none)",
    )


def _add_pet_options(parser: argparse.ArgumentParser, d: PhantomOptions) -> None:
    """The PET grid and image quality (used by petct only), with d's defaults."""
    pet = parser.add_argument_group("PET (petct)")
    pet.add_argument("--pet-size", type=int, metavar="PX", help="PET pixels per side (default: PET FOV / 4 mm)")
    pet.add_argument("--pet-fov", type=float, metavar="MM", help="PET field of view (default: the CT's)")
    pet.add_argument(
        "--pet-slice-thickness",
        type=float,
        default=d.pet_slice_thickness_mm,
        metavar="MM",
        help="PET slice spacing; the PET covers the CT's z range (default: %(default)s mm)",
    )
    pet.add_argument(
        "--pet-blur",
        type=float,
        default=d.pet_blur_mm,
        metavar="MM",
        help="PET resolution FWHM; truth is the unblurred activity (default: %(default)s mm)",
    )
    pet.add_argument(
        "--pet-noise",
        type=float,
        default=d.pet_noise,
        metavar="FRAC",
        help="PET relative noise at the mean body activity, 0 for none (default: %(default)s)",
    )


def _add_patient_options(parser: argparse.ArgumentParser) -> None:
    """Patient and injection facts that would otherwise be drawn from the seed."""
    patient = parser.add_argument_group("patient and injection")
    patient.add_argument("--weight", type=float, metavar="KG", help="patient weight (default: random 50-100 kg)")
    patient.add_argument("--height", type=float, metavar="M", help="patient height (default: random 1.55-1.92 m)")
    patient.add_argument("--sex", choices=("M", "F", "O"), help="patient sex (default: random M or F)")
    patient.add_argument("--dose", type=float, metavar="MBQ", help="injected FDG activity (default: 3.5 MBq/kg)")
    patient.add_argument(
        "--uptake", type=float, metavar="MIN", help="injection to PET start (default: random 55-70 min)"
    )


def options_from_args(args: argparse.Namespace) -> PhantomOptions:
    """Build :class:`PhantomOptions` from parsed arguments.

    Raises
    ------
    PhantomOptionError
        When list lengths do not match the number of tumours or a value is out of range.
    """
    lists = {
        "volumes": args.volumes,
        "shapes": args.shapes,
        "locations": args.locations,
        "tumour-suv": args.tumour_suv,
        "solid-fractions": args.solid_fractions,
    }
    lengths = [len(v) for v in lists.values() if v]
    count = args.tumours if args.tumours is not None else max(lengths, default=1)
    if count < 0:
        raise PhantomOptionError(f"--tumours must be >= 0, got {count}")
    per = {name: _per_tumour(name, values, count) for name, values in lists.items()}
    specs = tuple(
        TumourSpec(
            volume_ml=per["volumes"][i],
            shape=per["shapes"][i],
            location=per["locations"][i],
            suv=per["tumour-suv"][i],
            solid_fraction=1.0 if per["solid-fractions"][i] is None else per["solid-fractions"][i],
        )
        for i in range(count)
    )
    slices = args.slices
    if args.z_extent is not None:
        slices = max(1, int(round(args.z_extent / args.slice_thickness)))
    return PhantomOptions(
        seed=args.seed,
        tumours=specs,
        size=args.size,
        fov_mm=args.fov,
        slice_thickness_mm=args.slice_thickness,
        slices=slices if slices is not None else PhantomOptions().slices,
        noise_hu=args.noise,
        blur_mm=args.blur,
        contrast_hu=args.contrast,
        pet_size=args.pet_size,
        pet_fov_mm=args.pet_fov,
        pet_slice_thickness_mm=args.pet_slice_thickness,
        pet_blur_mm=args.pet_blur,
        pet_noise=args.pet_noise,
        weight_kg=args.weight,
        height_m=args.height,
        sex=args.sex,
        dose_mbq=args.dose,
        uptake_min=args.uptake,
    )


def _per_tumour(name: str, values: Sequence[_T] | None, count: int) -> list[_T | None]:
    if not values:
        return [None] * count
    if len(values) == 1:
        return list(values) * count
    if len(values) != count:
        raise PhantomOptionError(f"--{name} gives {len(values)} values for {count} tumours: give 1 or {count}")
    return list(values)


def run(args: argparse.Namespace) -> int:
    """Generate and write the study; print where it went. Returns the exit code."""
    options = options_from_args(args)
    started = time.perf_counter()
    result = make_petct(options) if args.kind == "petct" else make_ct(options)
    files = write_study(result, args.out, overwrite=args.overwrite)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {args.kind} phantom (seed {options.seed}) to {args.out}: {len(files['CT'])} CT"
        + (f", {len(files['PET'])} PET" if files["PET"] else "")
        + f" slices, truth in {args.out}/truth ({elapsed:.1f} s)"
    )
    for t in result.truth["tumours"]:
        print(
            f"  tumour {t['label']}: {t['volume_ml']:.1f} ml {t['shape']} {t['location']} ({t['side']} lung)"
            + (f", SUVbw {t['suvbw']:g}" if "suvbw" in t else "")
        )
    return 0
