"""``oncoqi lung``: lung isolation and segmentation evaluation on chest CT.

``oncoqi lung isolate INPUT --out DIR`` writes, on the input's own grid,
``DIR/lung_mask.nrrd`` (0 outside, 1 right lung, 2 left lung), ``DIR/search_region.nrrd`` (where
tumours are searched: the lungs and their mirror about the spine, dilated by 5 mm),
``DIR/body_mask.nrrd``, ``DIR/lungs.json`` (volumes, slices, spine detection) and, unless
``--no-qc``, ``DIR/lung_qc.png``. ``oncoqi lung evaluate PRED GT`` compares label maps.

``oncoqi lung segment INPUT --out DIR [--model PATH] [--threads N]`` runs the whole tumour
pipeline and writes, on the input's grid,
``DIR/tumor_label.nrrd`` (0 background, 1 GTV-1, 2..n other lesions), ``DIR/lung_mask.nrrd`` and
``DIR/lesions.json`` (one record per lesion), only once everything has been computed; with
``--report DIR2`` also a DICOM SEG + SR of the lesions, and ``--dicom-seg`` the same into ``DIR``.
``oncoqi lung train`` trains the network (needs the ``train`` extra) and ``oncoqi lung tune``
chooses its threshold and minimum lesion size on held-out phantoms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from oncoqi.atomic import write_text, write_volume
from oncoqi.dicom import read_image, read_label_file
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.jsonio import strict
from oncoqi.lung.click import add_lesions_at_points, point_index
from oncoqi.lung.isolation import isolate_lungs
from oncoqi.lung.onnx_model import ModelError, OnnxSegmenter
from oncoqi.lung.preprocess import PreprocessOptions
from oncoqi.lung.qc import write_lung_qc
from oncoqi.lung.segment import TUMOUR_LABEL_FILE, check_model, resolve_model, segment_ct
from oncoqi.lung.training import ensemble, train, tune
from oncoqi.lung.training.data import (
    CONTRAST_HU,
    LARGE_TUMOUR_ML,
    AugmentOptions,
    PhantomSetOptions,
    SliceOptions,
    TrainingError,
    default_workers,
    load_cases,
    phantom_cases,
    prepare_slices,
)
from oncoqi.lung.training.train import CONTEXT_MM, TrainOptions
from oncoqi.lung.training.unet import UNetOptions
from oncoqi.metrics import DEFAULT_TOLERANCE_MM, EvaluationCase, evaluate_set
from oncoqi.metrics.matching import match_cases
from oncoqi.metrics.report import print_report, report_dict
from oncoqi.progress import for_terminal
from oncoqi.report.lung import write_lesion_report

#: ``oncoqi lung --help``: plain text, shown as written.
DESCRIPTION = """\
Find the lungs and the lung tumours on a chest CT, and score segmentations.

A CT is a DICOM folder or file, or an NRRD, NIfTI or MetaImage volume. The
tumour network ships in the package; train, tune and ensemble make and adjust
other models.
"""
EPILOG = """\
Examples:
  oncoqi lung isolate CT_DIR --out lungs
  oncoqi lung segment CT_DIR --out lesions --dicom-seg
  oncoqi lung evaluate lesions/tumor_label.nrrd truth/tumor_label.nrrd
"""

#: ``oncoqi lung isolate --help``.
ISOLATE_DESCRIPTION = """\
Isolate the lungs of a chest CT and the region where tumours are searched.

Writes, on the CT's own grid:
  DIR/lung_mask.nrrd      0 outside, 1 right lung, 2 left lung
  DIR/search_region.nrrd  where tumours are searched: the lungs and their
                          mirror image about the spine, dilated by 5 mm
  DIR/body_mask.nrrd      the body
  DIR/lungs.json          lung volumes (ml), lung slices, spine detection
  DIR/lung_qc.png         a QC picture (not with --no-qc)
"""
ISOLATE_EPILOG = """\
Examples:
  oncoqi lung isolate CT_DIR --out lungs
  oncoqi lung isolate ct.nrrd --out lungs --no-qc --force
"""

#: ``oncoqi lung evaluate --help``.
EVALUATE_DESCRIPTION = """\
Score predicted tumour label maps against reference ones, case by case.

PRED and GT are both label-map files (one case) or both folders. In folders,
every label file (.nrrd .nhdr .nii .nii.gz .mha .mhd) or sub-folder (a DICOM
series) of GT is a case, named by its file name without the extension; PRED
must hold an entry of the same name (a missing one is an error, not a silent
skip). Any non-zero voxel is lesion.

Per case: DSC, Jaccard, HD95 (mm), surface Dice and added path length at
--tolerance-mm, and the volume difference. The summary gives the median
[Q1, Q3] over the cases; an empty prediction counts as DSC 0 and HD95 inf.
Lung-wise detection (sensitivity, specificity, AUC) splits each case into its
right and left lung, with --lungs (lung label maps, 1 right, 2 left, named
like the cases) or at --midline-x-mm; its score is the per-lung maximum of
--probabilities when given, else the predicted volume.

--json prints an object with tolerance_mm, cases (one object per case),
summary (per metric: n, median, q1, q3, mean), detection and lungs; infinite
and undefined values are null there (empty_prediction tells a failed case).
"""
EVALUATE_EPILOG = """\
Examples:
  oncoqi lung evaluate lesions/tumor_label.nrrd truth/tumor_label.nrrd
  oncoqi lung evaluate predictions/ references/ --lungs lungs/ --json
"""

#: ``oncoqi lung segment --help``.
SEGMENT_DESCRIPTION = """\
Segment and measure the lung tumours of a chest CT (GTV-1 and other lesions).

Writes, on the CT's grid and only once everything has been computed:
  DIR/tumor_label.nrrd  0 background, 1 GTV-1 (the largest lesion with no
                        doubt), 2..n the others: undoubted ones first, each
                        group by decreasing volume
  DIR/lung_mask.nrrd    0 outside, 1 right lung, 2 left lung
  DIR/lesions.json      per lesion: volume (ml), RECIST and perpendicular
                        diameters (mm), centre (LPS mm), side, confidence,
                        doubts (why it may not be a tumour: a thin sheet, at
                        the scan's edge, low confidence), source
With --report DIR2 also the lesions as DICOM SEG + SR TID 1500 (seg.dcm,
sr.dcm) in DIR2; --dicom-seg writes them into DIR. Both need the CT as DICOM.
--point X Y Z (LPS mm; Slicer shows RAS, so negate its x and y) adds the
tumour around a point placed inside a tumour the automatic pass missed.
"""
SEGMENT_EPILOG = """\
Examples:
  oncoqi lung segment CT_DIR --out lesions
  oncoqi lung segment CT_DIR --out lesions --report report --threads 4
  oncoqi lung segment ct.nrrd --out lesions --model my_model.onnx
  oncoqi lung segment CT_DIR --out lesions --point -28.7 -22.8 -40.8
"""

#: ``oncoqi lung train --help``.
TRAIN_DESCRIPTION = """\
Train the lung tumour network on CT cases or phantoms; export it to ONNX.

Needs the train extra (pip install 'oncoqi[train]', TensorFlow). Whole cases
are held out for validation. --cases takes a folder with one sub-folder per
case, holding a tumour label volume (name starting with tumor_label,
tumour_label, label or gtv) and the CT (a volume named image*, ct* or
volume*, else a CT sub-folder of DICOM, else the DICOM in the case folder).

Writes into --out: best.weights.h5 (the best validation Dice so far),
training_log.csv, learning_curves.png and lung_unet.onnx (the best weights,
with the preprocessing and network options in its metadata; rewritten at
every improvement, so an interrupted run leaves its best model), and
resume.npz, replaced after every epoch: --resume resume.npz goes on exactly
where a run stopped, with the cases and options it stored, so a long run is
trained in pieces (--stop-after MINUTES ends a piece); to go on elsewhere,
carry resume.npz with best.weights.h5. --mine-from MODEL --mined SHARE
feeds a model's mistakes back: it runs MODEL on the training slices first and
centres that share of the crops on its false positives and missed tumour.
Tune the model after (oncoqi lung tune). What each option does and the runs
behind the shipped model: Docs/model-card.md.
"""
TRAIN_EPILOG = """\
Examples:
  oncoqi lung train --phantoms 120 --seed 0 --epochs 30 --out runs/lung_unet
  oncoqi lung train --cases my_cases --init-from lung_unet.onnx --epochs 5 \\
      --out runs/fine_tuned
  oncoqi lung train --phantoms 160 --epochs 60 --hard-cases 0.5 \\
      --hard-negatives 0.5 --stop-after 120 --out runs/long
  oncoqi lung train --resume runs/long/resume.npz --stop-after 120
  oncoqi lung train --phantoms 160 --init-from runs/long/lung_unet.onnx \\
      --mine-from runs/long/lung_unet.onnx --mined 0.3 --epochs 15 \\
      --out runs/mined
"""

#: ``oncoqi lung tune --help``.
TUNE_DESCRIPTION = """\
Choose a model's threshold and lesion filters on held-out synthetic cases.

A slice-wise network leaves small specks and vessel cross-sections that would
be false lesions. The probability threshold and what a lesion must have to
count (its volume, slices, confidence, share inside the lungs, and the vessel
and diaphragm-dome tests) depend on the model, so they are chosen per model
on a tuning set that is neither the training nor the test set (phantom seed
500 for the shipped model) and stored in the model's metadata, where
oncoqi lung segment reads them. A setting is scored first by the figure
furthest below its bar (median Dice 0.85, lung-wise sensitivity and
specificity 0.95), then by the mean of Dice, sensitivity, specificity,
lesion-wise precision and an HD95 term. Details: Docs/model-card.md.
"""
TUNE_EPILOG = """\
Examples:
  oncoqi lung tune --model runs/ensemble.onnx --phantoms 20 --seed 500
  oncoqi lung tune --model lung_unet.onnx --dry-run
"""

#: ``oncoqi lung ensemble --help``.
ENSEMBLE_DESCRIPTION = """\
Combine trained tumour networks into one ONNX model that averages them.

Networks trained from different seeds agree on true tumours but each has false
lesions of its own; their mean keeps what they agree on. With --mirror each
network also sees the slice mirrored left to right (one network is then enough;
it doubles the time). The members must share the preprocessing. The ensemble is
a new model: tune it after (oncoqi lung tune).
"""
ENSEMBLE_EPILOG = """\
Examples:
  oncoqi lung ensemble runs/a/lung_unet.onnx runs/b/lung_unet.onnx \\
      --out runs/ensemble.onnx
  oncoqi lung ensemble runs/a/lung_unet.onnx --mirror --out runs/mirror.onnx
"""


#: ``oncoqi lung quantize --help``.
QUANTIZE_DESCRIPTION = """\
Make an int8 copy of a tumour model: the same network, about 1.8x faster.

The convolutions' weights become 8-bit integers (per output channel) and
their inputs 8-bit with a scale chosen on calibration slices: synthetic
training phantoms, preprocessed as inference does. Everything the model
carries (preprocessing, threshold, lesion rules) is kept, and
oncoqi.quantized in its metadata says what was done. Needs the train extra
(onnx). Whether it may replace the float model: Docs/model-card.md.
"""
QUANTIZE_EPILOG = """\
Examples:
  oncoqi lung quantize runs/mirror.onnx --out runs/mirror-int8.onnx
  oncoqi lung quantize lung_unet.onnx --phantoms 4 --out int8.onnx --force
"""

#: What each writing sub-command leaves in its folders (the overwrite rule replaces them as a whole).
ISOLATE_FILES = ("lung_mask.nrrd", "search_region.nrrd", "body_mask.nrrd", "lungs.json", "lung_qc.png")
REPORT_FILES = ("seg.dcm", "sr.dcm")
SEGMENT_FILES = (TUMOUR_LABEL_FILE, "lung_mask.nrrd", "lesions.json", *REPORT_FILES)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi lung`` and its sub-commands."""
    parser = sub.add_parser(
        "lung",
        help="lung isolation, lung tumour segmentation and its evaluation, model training",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lsub = parser.add_subparsers(dest="lung_command", metavar="ACTION")
    lsub.required = True

    iso = lsub.add_parser(
        "isolate",
        help="isolate the lungs of a chest CT (DICOM folder or volume file)",
        description=ISOLATE_DESCRIPTION,
        epilog=ISOLATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    iso.add_argument("input", metavar="INPUT", help="CT as a DICOM folder/file or an NRRD/NIfTI/MetaImage file")
    iso.add_argument("--out", required=True, help="output folder (created)")
    iso.add_argument("--series-uid", help="SeriesInstanceUID when INPUT holds several image series")
    iso.add_argument("--no-qc", action="store_true", help="do not write the QC picture lung_qc.png")
    iso.add_argument("--force", action="store_true", help="replace the results already in --out")
    iso.set_defaults(
        func=_isolate,
        output_folders=("out",),
        results={"out": ISOLATE_FILES},
        run_command="lung isolate",
        input_arg="input",
    )

    add_evaluate_parser(lsub)

    seg = lsub.add_parser(
        "segment",
        help="segment lung tumours (GTV-1 and other lesions) with the tumour network",
        description=SEGMENT_DESCRIPTION,
        epilog=SEGMENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seg.add_argument("input", metavar="INPUT", help="CT as a DICOM folder/file or an NRRD/NIfTI/MetaImage file")
    seg.add_argument("--out", required=True, help="output folder (created)")
    seg.add_argument("--model", help="ONNX tumour model (default: the model shipped in the package)")
    seg.add_argument("--threads", type=int, help="onnxruntime threads (default: one per physical core)")
    seg.add_argument(
        "--point",
        action="append",
        nargs=3,
        type=float,
        metavar=("X", "Y", "Z"),
        help="a point (LPS mm, as Slicer shows it with RAS x and y negated) inside a tumour the automatic pass "
        "missed: the tumour around it is outlined and added as a lesion (repeatable)",
    )
    seg.add_argument("--series-uid", help="SeriesInstanceUID when INPUT holds several image series")
    seg.add_argument(
        "--report",
        metavar="DIR",
        help="also write the lesions as DICOM SEG + SR TID 1500 (seg.dcm, sr.dcm) into DIR; "
        "INPUT must then be a DICOM series",
    )
    seg.add_argument("--dicom-seg", action="store_true", help="write the DICOM SEG + SR into --out (as --report OUT)")
    seg.add_argument("--force", action="store_true", help="with --report, replace an existing seg.dcm/sr.dcm")
    seg.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines per stage on stderr (shown only on a terminal)"
    )
    seg.set_defaults(
        func=_segment,
        output_folders=("out", "report"),
        results={"out": SEGMENT_FILES, "report": REPORT_FILES},
        run_command="lung segment",
        input_arg="input",
    )

    _add_train_parser(lsub)
    _add_tune_parser(lsub)
    _add_ensemble_parser(lsub)
    _add_quantize_parser(lsub)


def _isolate(args: argparse.Namespace) -> int:
    ct = read_image(args.input, args.series_uid)
    masks = isolate_lungs(ct, name=str(args.input))
    out = Path(args.out)
    write_volume(masks.lungs, out / "lung_mask.nrrd")
    write_volume(masks.search_region, out / "search_region.nrrd")
    write_volume(masks.body, out / "body_mask.nrrd")
    first, last = masks.lung_slices
    summary = {
        "input": str(args.input),
        "volume_ml": masks.volume_ml,
        "lung_slices": [int(first), int(last)],
        "spine_detected_slices": int(masks.spine_detected.sum()),
        "slices": int(ct.array.shape[0]),
    }
    write_text(json.dumps(summary, indent=2) + "\n", out / "lungs.json")
    if not args.no_qc:
        write_lung_qc(ct, masks, out / "lung_qc.png")
    v = masks.volume_ml
    print(f"{out}: right lung {v['right']:.0f} ml, left lung {v['left']:.0f} ml, slices {first}..{last}")
    return 0


def _segment(args: argparse.Namespace) -> int:
    model = resolve_model(args.model)
    if args.dicom_seg and not args.report:
        args.report = args.out
    out = Path(args.out)
    written = None
    with for_terminal(sys.stderr, quiet=args.quiet) as stages:  # stage lines end before anything else is printed
        stages.stage("read")
        ct = read_image(args.input, args.series_uid)
        if args.report and ct.metadata.get("source") != "dicom":
            raise InputError(
                f"{args.input}: --report needs the CT as a DICOM series (the SEG references its instances)"
            )
        for point in args.point or ():  # before the network's minutes, not after
            point_index(ct, point, f"the CT {args.input}")
        result = segment_ct(ct, model, threads=args.threads, progress=stages, name=str(args.input))
        notes = []
        if args.point:
            result, notes = add_lesions_at_points(ct, result, args.point)
        stages.stage("write")
        records = [lesion.to_dict() for lesion in result.lesions]
        write_volume(result.labels, out / TUMOUR_LABEL_FILE)
        write_volume(result.lungs, out / "lung_mask.nrrd")
        write_text(json.dumps(records, indent=2) + "\n", out / "lesions.json")
        if args.report and result.lesions:
            written = write_lesion_report(
                ct.metadata["files"], result.labels, result.lesions, args.report, force=args.force
            )
    print("\n".join([*notes, f"{out}: {len(records)} lesion(s)"]))
    for r in records:
        print(
            f"  {r['label']}: {r['volume_ml']:.1f} ml, RECIST {r['recist_mm']:.1f} mm, {r['side']}, "
            f"confidence {r['confidence']:.2f}" + (f"; doubtful: {'; '.join(r['doubts'])}" if r["doubts"] else "")
        )
    if written is not None:
        print(f"  report: {written.seg_path}, {written.sr_path}")
    elif args.report:
        print("no lesion found: no DICOM report written", file=sys.stderr)
    return 0


def add_evaluate_parser(lung_subparsers: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` under the ``oncoqi lung`` sub-commands."""
    p = lung_subparsers.add_parser(
        "evaluate",
        help="DSC, HD95, surface Dice, APL, volume difference and lung-wise detection of predictions",
        description=EVALUATE_DESCRIPTION,
        epilog=EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pred", metavar="PRED", help="predicted label map, or folder of them")
    p.add_argument("gt", metavar="GT", help="reference label map, or folder of them")
    p.add_argument(
        "--tolerance-mm",
        type=float,
        default=DEFAULT_TOLERANCE_MM,
        metavar="MM",
        help=f"surface Dice and APL tolerance (default {DEFAULT_TOLERANCE_MM})",
    )
    p.add_argument(
        "--probabilities", metavar="PATH", help="probability map(s), named like the cases, for the detection score"
    )
    p.add_argument("--lungs", metavar="PATH", help="lung label map(s) (1 right, 2 left), named like the cases")
    p.add_argument(
        "--midline-x-mm",
        type=float,
        default=0.0,
        metavar="MM",
        help="LPS x of the body midline, splitting the lungs without --lungs (default 0)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_evaluate)


def _load(cases: list[tuple[str, dict[str, Path]]]) -> Iterator[EvaluationCase]:
    for name, paths in cases:
        # the probabilities are a map of fractions; every other role holds labels
        images: dict[str, Image] = {
            role: read_image(path) if role == "probabilities" else read_label_file(path) for role, path in paths.items()
        }
        yield EvaluationCase(name, images["pred"], images["gt"], images.get("probabilities"), images.get("lungs"))


def _evaluate(args: argparse.Namespace) -> int:
    extra = {"probabilities": args.probabilities, "lungs": args.lungs}
    cases = match_cases(Path(args.pred), Path(args.gt), **{k: Path(v) if v else None for k, v in extra.items()})
    report = evaluate_set(_load(cases), tolerance_mm=args.tolerance_mm, midline_x_mm=args.midline_x_mm)
    if args.json:
        print(json.dumps(strict(report_dict(report)), indent=2))
    else:
        print_report(report)
    return 0


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi lung train``."""
    p = sub.add_parser(
        "train",
        help="train the lung tumour network and export it to ONNX (needs the 'train' extra)",
        description=TRAIN_DESCRIPTION,
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_case_options(p)
    _add_sampling_options(p)
    _add_optimiser_options(p)
    _add_network_options(p)
    # The recipe: every setting above that decides what is learnt, stored in resume.npz.
    recipe = {action.dest: action.default for action in p._actions if action.dest not in ("help", "workers")}
    p.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="go on with a stopped run from its resume.npz, exactly where it stopped; the cases and options "
        "are the checkpoint's (give none of them), the output folder is the checkpoint's",
    )
    p.add_argument(
        "--stop-after",
        type=float,
        metavar="MINUTES",
        help="end this piece of the run after the epoch that finishes this many minutes after the start; "
        "resume.npz lets the next piece go on",
    )
    p.add_argument("--out", help="output folder (created; with --resume: the checkpoint's folder)")
    p.set_defaults(func=_train, output_folders=("out",), recipe_defaults=recipe)


def _add_case_options(p: argparse.ArgumentParser) -> None:
    """``oncoqi lung train``: where the cases come from (a folder, or phantoms and how they are drawn), and the seed."""
    source = p.add_mutually_exclusive_group()  # one of them, or --resume
    source.add_argument("--cases", help="folder with one sub-folder per case (CT + tumour label)")
    source.add_argument("--phantoms", type=int, metavar="N", help="generate N synthetic cases with random options")
    p.add_argument("--seed", type=int, default=0, help="seed of phantoms, split, sampling and weights (default 0)")
    p.add_argument("--phantom-size", type=int, default=256, help="phantom CT matrix (default 256)")
    p.add_argument(
        "--phantom-z-mm", type=float, default=300.0, help="longest thorax length of a phantom (default 300 mm)"
    )
    p.add_argument(
        "--wide-geometry",
        action="store_true",
        help="phantoms also with 7.5/10 mm slices and 2-3 mm pixels (beyond the test sets' range)",
    )
    p.add_argument(
        "--subsolid",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of phantom tumours drawn part-solid or ground glass (default 0: all solid)",
    )
    p.add_argument(
        "--large-tumours",
        type=float,
        default=0.0,
        metavar="SHARE",
        help=f"share of phantom tumours drawn {LARGE_TUMOUR_ML[0]:g}-{LARGE_TUMOUR_ML[1]:g} ml, the size of many "
        "primary NSCLC (default 0: the generator's 1-60 ml)",
    )
    p.add_argument(
        "--hard-cases",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of phantom tumours placed against the mediastinum or the chest wall, the tumours that look "
        "like the soft tissue they abut (default 0: anywhere)",
    )
    p.add_argument(
        "--contrast",
        type=float,
        default=0.0,
        metavar="SHARE",
        help=f"share of phantoms with intravenous contrast, blood raised {CONTRAST_HU[0]:g}-{CONTRAST_HU[1]:g} HU "
        "(default 0: none)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes preparing phantom cases (default: one per CPU)",
    )


def _add_sampling_options(p: argparse.ArgumentParser) -> None:
    """``oncoqi lung train``: how many crops the network sees, where they are centred and how they are augmented."""
    p.add_argument("--epochs", type=int, default=TrainOptions.epochs)
    p.add_argument("--steps-per-epoch", type=int, default=TrainOptions.steps_per_epoch)
    p.add_argument("--batch-size", type=int, default=TrainOptions.batch_size)
    p.add_argument("--crop", type=int, default=TrainOptions.crop, help="training crop side in network pixels")
    p.add_argument(
        "--tumour-fraction",
        type=float,
        default=TrainOptions.tumour_fraction,
        help="share of crops centred near a tumour pixel; the rest are centred anywhere in the search "
        f"region, the hard negatives (default {TrainOptions.tumour_fraction:g})",
    )
    p.add_argument(
        "--hard-negatives",
        type=float,
        default=TrainOptions.hard_negatives,
        metavar="SHARE",
        help="share of the other crops centred on dense tissue at the lungs' edge (hila, vessels, borders, "
        "domes) instead of anywhere in the search region (default 0)",
    )
    p.add_argument(
        "--mine-from",
        metavar="MODEL",
        help="before the first epoch, run this ONNX model on the training slices and keep where it is wrong "
        "(false positives and missed tumour); --mined of the crops are centred there (a fine-tuning round: "
        "--init-from the same model)",
    )
    p.add_argument(
        "--mined",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of crops centred on a mistake mined with --mine-from (default 0)",
    )
    p.add_argument(
        "--negative-ratio",
        type=float,
        default=SliceOptions.negative_ratio,
        help=f"tumour-free slices drawn per tumour slice (default {SliceOptions.negative_ratio:g})",
    )
    p.add_argument(
        "--min-negatives",
        type=int,
        default=SliceOptions.min_negatives,
        help=f"tumour-free slices drawn at least per case (default {SliceOptions.min_negatives})",
    )
    p.add_argument(
        "--flip",
        type=float,
        default=AugmentOptions.p_flip,
        metavar="P",
        help="probability of mirroring a training crop left to right (default 0: not published; "
        "meant for a network run with its mirrored pass, see the model card)",
    )


def _add_optimiser_options(p: argparse.ArgumentParser) -> None:
    """``oncoqi lung train``: the weights the run starts from and the schedule of the learning rate and loss."""
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from the network in this ONNX model (one written by "
        "'oncoqi lung train', or the shipped model) instead of random weights, to fine-tune it on new cases "
        "or augmentation; --base-filters, --depth and --context-mm must match it",
    )
    p.add_argument("--learning-rate", type=float, default=TrainOptions.learning_rate)
    p.add_argument(
        "--dice-epochs",
        type=int,
        default=TrainOptions.dice_epochs,
        help="epochs over which the Dice weight falls from --dice-start to --dice-end",
    )
    p.add_argument("--dice-start", type=float, default=TrainOptions.dice_start)
    p.add_argument("--dice-end", type=float, default=TrainOptions.dice_end)


def _add_network_options(p: argparse.ArgumentParser) -> None:
    """``oncoqi lung train``: the U-Net's shape and its input grid, which the model carries and inference must match."""
    p.add_argument("--base-filters", type=int, default=UNetOptions.base_filters)
    p.add_argument("--depth", type=int, default=UNetOptions.depth)
    p.add_argument(
        "--grid", type=int, default=PreprocessOptions.columns, help="network grid, pixels per side (default 512)"
    )
    p.add_argument(
        "--pixel-mm", type=float, default=PreprocessOptions.pixel_mm, help="network pixel size in mm (default 1)"
    )
    p.add_argument(
        "--context-mm",
        type=float,
        default=CONTEXT_MM,
        help=f"distance of the neighbouring slices given as extra channels, mm (default {CONTEXT_MM:g}; "
        "0: the slice alone)",
    )


def _data_note(args: argparse.Namespace) -> str:
    """What the cases of this run are, for the model's ``oncoqi.training`` note."""
    if args.cases:
        return f"the cases of {Path(args.cases).name}"
    extras = [
        name
        for name, on in (
            ("wide geometry", args.wide_geometry),
            (f"subsolid {args.subsolid:g}", args.subsolid),
            (f"large tumours {args.large_tumours:g}", args.large_tumours),
            (f"hard cases {args.hard_cases:g}", args.hard_cases),
            (f"contrast {args.contrast:g}", args.contrast),
        )
        if on
    ]
    return f"{args.phantoms} synthetic phantoms of set seed {args.seed}" + (f" ({', '.join(extras)})" if extras else "")


def _resumed_args(args: argparse.Namespace) -> tuple[argparse.Namespace, train.ResumeState | None]:
    """The settings to train with: the command line's, or with ``--resume`` the checkpoint's recipe.

    Raises
    ------
    TrainingError
        Without cases and without --resume; with --resume and settings of its own, or another --out.
    """
    if args.resume is None:
        if args.cases is None and args.phantoms is None or args.out is None:
            raise TrainingError("give the cases (--cases DIR or --phantoms N) and --out, or --resume CHECKPOINT")
        return args, None
    given = [
        f"--{key.replace('_', '-')}" for key, default in args.recipe_defaults.items() if getattr(args, key) != default
    ]
    if given:
        raise TrainingError(f"--resume takes the cases and options from the checkpoint; leave out {', '.join(given)}")
    folder = Path(args.resume).resolve().parent
    if args.out is not None and Path(args.out).resolve() != folder:
        raise TrainingError(f"--resume goes on in the checkpoint's folder {folder}, not {args.out}")
    state = train.ResumeState.load(args.resume)
    state.check_folder(folder)
    recipe = {key: state.recipe[key] for key in args.recipe_defaults if key in state.recipe}
    resumed = argparse.Namespace(**{**vars(args), **recipe, "out": str(folder)})
    return resumed, state


def _train(args: argparse.Namespace) -> int:
    args, state = _resumed_args(args)
    if args.phantoms is not None and args.phantoms < 2:
        raise TrainingError(f"--phantoms must be >= 2 (one case is held out for validation), got {args.phantoms}")
    shares = {
        "--subsolid": args.subsolid,
        "--large-tumours": args.large_tumours,
        "--hard-cases": args.hard_cases,
        "--contrast": args.contrast,
        "--flip": args.flip,
        "--hard-negatives": args.hard_negatives,
        "--mined": args.mined,
    }
    for flag, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise TrainingError(f"{flag} must be between 0 and 1, got {share:g}")
    if bool(args.mined) != bool(args.mine_from):
        raise TrainingError("--mine-from MODEL and --mined SHARE go together")
    options = TrainOptions(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        crop=args.crop,
        tumour_fraction=args.tumour_fraction,
        hard_negatives=args.hard_negatives,
        mine_from=args.mine_from,
        mined=args.mined,
        learning_rate=args.learning_rate,
        dice_start=args.dice_start,
        dice_end=args.dice_end,
        dice_epochs=args.dice_epochs,
        seed=args.seed,
        init_from=args.init_from,
        data=_data_note(args),
        unet=UNetOptions(base_filters=args.base_filters, depth=args.depth),
        augment=AugmentOptions(p_flip=args.flip),
        slices=SliceOptions(
            PreprocessOptions(pixel_mm=args.pixel_mm, columns=args.grid, rows=args.grid, context_mm=args.context_mm),
            negative_ratio=args.negative_ratio,
            min_negatives=args.min_negatives,
        ),
    )
    if args.mine_from:  # before the cases are prepared, so a wrong model fails in seconds, not minutes
        _check_mining_model(args.mine_from, options.preprocess.channels)
    started = time.perf_counter()
    phantoms = PhantomSetOptions(
        count=args.phantoms or 0,
        size=args.phantom_size,
        z_mm=args.phantom_z_mm,
        wide_geometry=args.wide_geometry,
        subsolid=args.subsolid,
        large=args.large_tumours,
        hard=args.hard_cases,
        contrast=args.contrast,
    )
    prepared = prepare_slices(
        load_cases(args.cases) if args.cases else None,
        options.slices,
        args.seed,
        phantoms=phantoms,
        workers=args.workers,
    )
    recipe = {key: getattr(args, key) for key in args.recipe_defaults}
    stop_after_s = None if args.stop_after is None else 60.0 * args.stop_after
    result = train.train(prepared, args.out, options, recipe=recipe, resume=state, stop_after_s=stop_after_s)
    done = "" if result.epochs_done == options.epochs else f", {result.epochs_done} of {options.epochs} epochs done"
    print(
        f"{result.model_path}: best validation Dice {result.best_val_dice:.3f} at epoch {result.best_epoch} "
        f"({(time.perf_counter() - started) / 60:.1f} min{done})"
    )
    return 0


def _check_mining_model(path: str, channels: int) -> None:
    """Fail now when ``--mine-from`` is not a model the training slices can be run through.

    Raises
    ------
    oncoqi.lung.onnx_model.ModelError
        When the model is missing, unloadable, or takes another number of slices per input.
    """
    with OnnxSegmenter(path) as segmenter:
        if segmenter.channels != channels:
            raise ModelError(
                f"{path}: --mine-from takes {segmenter.channels} slice(s) per input, this run's network "
                f"{channels} (--context-mm)"
            )


def _add_tune_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi lung tune``."""
    p = sub.add_parser(
        "tune",
        help="choose a model's threshold and minimum lesion size on held-out phantoms",
        description=TUNE_DESCRIPTION,
        epilog=TUNE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="ONNX model to tune (its metadata is updated in place)")
    p.add_argument("--phantoms", type=int, default=10, help="tuning cases (default 10)")
    p.add_argument("--seed", type=int, default=500, help="tuning set seed, neither a training nor a test seed")
    p.add_argument("--threads", type=int, help="onnxruntime threads")
    p.add_argument("--dry-run", action="store_true", help="print the scores, do not change the model")
    p.set_defaults(func=_tune)


def _tune(args: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    model = resolve_model(args.model)
    check_model(model)  # a missing or bad model: said before the phantoms are made
    cases = tune.case_probabilities(phantom_cases(args.phantoms, args.seed), model, args.threads)
    best, scored = tune.choose(cases)
    for s in sorted(scored, key=lambda x: (-x.worst, -x.objective))[:10]:
        log(f"{s.rules_text()}: {s.note(len(cases), None)}")
    note = best.note(len(cases), args.seed)
    log(f"chosen: {best.rules_text()} ({note})")
    if not args.dry_run:
        tune.write_setting(model, best, note)
        log(f"{model}: metadata updated")
    return 0


def _add_ensemble_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi lung ensemble``."""
    p = sub.add_parser(
        "ensemble",
        help="average several trained networks into one ONNX model (tune it after)",
        description=ENSEMBLE_DESCRIPTION,
        epilog=ENSEMBLE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "models", nargs="+", help="ONNX networks trained on the same preprocessing (two or more, or one with --mirror)"
    )
    p.add_argument("--out", required=True, help="the ensemble's .onnx file")
    p.add_argument(
        "--mirror",
        action="store_true",
        help="also run each network on the left-right mirrored slice (one network is then enough)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_ensemble, output_files=("out",))


def _add_quantize_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi lung quantize``."""
    p = sub.add_parser(
        "quantize",
        help="make an int8 copy of a tumour model, about 1.8x faster (needs the 'train' extra)",
        description=QUANTIZE_DESCRIPTION,
        epilog=QUANTIZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="the float ONNX tumour model")
    p.add_argument("--out", required=True, help="the int8 model's .onnx file")
    p.add_argument("--phantoms", type=int, default=8, help="synthetic calibration cases (default 8)")
    p.add_argument("--seed", type=int, default=0, help="their set seed (default 0, the training set)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_quantize, output_files=("out",))


def _quantize(args: argparse.Namespace) -> int:
    from oncoqi.lung.training.data import phantom_cases
    from oncoqi.lung.training.quantize import quantize_model

    if args.phantoms < 1:
        raise TrainingError(f"--phantoms must be >= 1, got {args.phantoms}")
    check_model(args.model)
    cases = phantom_cases(args.phantoms, args.seed)
    quantize_model(args.model, args.out, cases, f"{args.phantoms} phantoms of set seed {args.seed}")
    return 0


def _ensemble(args: argparse.Namespace) -> int:
    path = ensemble.ensemble_onnx(args.models, args.out, mirror=args.mirror)
    print(
        f"{path}: mean of {ensemble.passes(len(args.models), args.mirror)} passes of {len(args.models)} network(s); "
        f"now run oncoqi lung tune --model {path}"
    )
    return 0
