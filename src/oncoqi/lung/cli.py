"""``oncoqi lung``: lung isolation and segmentation evaluation on chest CT.

``oncoqi lung isolate INPUT --out DIR`` writes, on the input's own grid,
``DIR/lung_mask.nrrd`` (0 outside, 1 right lung, 2 left lung), ``DIR/search_region.nrrd`` (where
tumours are searched: the lungs and their mirror about the spine, dilated by 5 mm),
``DIR/body_mask.nrrd``, ``DIR/lungs.json`` (volumes, slices, spine detection) and, unless
``--no-qc``, ``DIR/lung_qc.png``. ``oncoqi lung evaluate PRED GT`` compares label maps
(see :mod:`oncoqi.lung.evaluate_cli`).

``oncoqi lung segment INPUT --out DIR [--model PATH] [--threads N]`` runs the whole tumour
pipeline (:func:`oncoqi.lung.segment.segment_ct`) and writes, on the input's grid,
``DIR/tumor_label.nrrd`` (0 background, 1 GTV-1, 2..n other lesions), ``DIR/lung_mask.nrrd`` and
``DIR/lesions.json`` (one record per lesion), only once everything has been computed; with
``--report DIR2`` also a DICOM SEG + SR of the lesions (:mod:`oncoqi.report.lung`), and
``--dicom-seg`` the same into ``DIR``.
``oncoqi lung train`` trains the network (:mod:`oncoqi.lung.training.train`; needs the ``train`` extra) and
``oncoqi lung tune`` chooses its threshold and minimum lesion size on held-out phantoms
(:mod:`oncoqi.lung.training.tune`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from oncoqi.atomic import write_text, write_volume
from oncoqi.dicom import read_image
from oncoqi.errors import InputError
from oncoqi.lung.training.ensemble import add_ensemble_parser
from oncoqi.lung.evaluate_cli import add_evaluate_parser
from oncoqi.lung.isolation import isolate_lungs
from oncoqi.lung.qc import write_lung_qc
from oncoqi.report.lung import write_lesion_report
from oncoqi.lung.segment import resolve_model, segment_ct
from oncoqi.lung.training.train import add_train_parser
from oncoqi.lung.training.tune import add_tune_parser


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi lung`` and its sub-commands."""
    parser = sub.add_parser("lung", help="lung isolation and lung tumour segmentation evaluation", description=__doc__)
    lsub = parser.add_subparsers(dest="lung_command", metavar="ACTION")
    lsub.required = True

    iso = lsub.add_parser("isolate", help="isolate the lungs of a chest CT (DICOM folder or volume file)")
    iso.add_argument("input", metavar="INPUT", help="CT as a DICOM folder/file or an NRRD/NIfTI/MetaImage file")
    iso.add_argument("--out", required=True, help="output folder (created)")
    iso.add_argument("--series-uid", help="SeriesInstanceUID when INPUT holds several image series")
    iso.add_argument("--no-qc", action="store_true", help="do not write the QC picture lung_qc.png")
    iso.set_defaults(func=_isolate)

    add_evaluate_parser(lsub)

    seg = lsub.add_parser("segment", help="segment lung tumours (GTV-1 and other lesions) with the tumour network")
    seg.add_argument("input", metavar="INPUT", help="CT as a DICOM folder/file or an NRRD/NIfTI/MetaImage file")
    seg.add_argument("--out", required=True, help="output folder (created)")
    seg.add_argument("--model", help="ONNX tumour model (default: the model shipped in the package)")
    seg.add_argument("--threads", type=int, help="onnxruntime threads (default: one per physical core)")
    seg.add_argument("--series-uid", help="SeriesInstanceUID when INPUT holds several image series")
    seg.add_argument("--report", metavar="DIR",
                     help="also write the lesions as DICOM SEG + SR TID 1500 (seg.dcm, sr.dcm) into DIR; "
                          "INPUT must then be a DICOM series")  # fmt: skip
    seg.add_argument("--dicom-seg", action="store_true", help="write the DICOM SEG + SR into --out (as --report OUT)")
    seg.add_argument("--force", action="store_true", help="with --report, replace an existing seg.dcm/sr.dcm")
    seg.set_defaults(func=_segment)

    add_train_parser(lsub)
    add_tune_parser(lsub)
    add_ensemble_parser(lsub)


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
    ct = read_image(args.input, args.series_uid)
    if args.report and ct.metadata.get("source") != "dicom":
        raise InputError(f"{args.input}: --report needs the CT as a DICOM series (the SEG references its instances)")
    with tqdm(desc="segmenting", unit=" slices", leave=False, disable=not sys.stderr.isatty()) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        result = segment_ct(ct, model, threads=args.threads, progress=progress, name=str(args.input))
    out = Path(args.out)
    records = [lesion.to_dict() for lesion in result.lesions]
    write_volume(result.labels, out / "tumor_label.nrrd")
    write_volume(result.lungs, out / "lung_mask.nrrd")
    write_text(json.dumps(records, indent=2) + "\n", out / "lesions.json")
    print(f"{out}: {len(records)} lesion(s)")
    for r in records:
        print(f"  {r['label']}: {r['volume_ml']:.1f} ml, RECIST {r['recist_mm']:.1f} mm, {r['side']}, "
              f"confidence {r['confidence']:.2f}")
    if args.report:
        if not result.lesions:
            print("no lesion found: no DICOM report written", file=sys.stderr)
        else:
            written = write_lesion_report(ct.metadata["files"], result.labels, result.lesions, args.report,
                                          force=args.force)  # fmt: skip
            print(f"  report: {written.seg_path}, {written.sr_path}")
    return 0
