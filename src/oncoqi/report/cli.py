"""``oncoqi report write|read``: DICOM SEG + TID 1500 SR from label images, and back.

``write`` takes the source CT/PET series, one or more label images (NRRD/NIfTI), the segment
metadata (OncoQI or dcmqi JSON) and optional measurements (OncoQI or dcmqi JSON), and writes
``seg.dcm`` and ``sr.dcm`` into ``--out``. ``read`` prints what a SEG or SR holds: a segment
list or a measurement table, or with ``--json`` everything as JSON; for a SEG, ``--export DIR``
also writes the label images and the metadata JSON that ``write`` accepts back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from oncoqi.atomic import write_text, write_volume
from oncoqi.dicom.seg import SegmentationData
from oncoqi.errors import InputError
from oncoqi.report import read_report, write_report

#: ``oncoqi report --help``: plain text, shown as written.
DESCRIPTION = """\
Write segmentations and measurements as DICOM SEG + SR reports; read them.

The SR is a TID 1500 measurement report; the pair is what
QuantitativeReporting, dcmqi, OHIF and 3D Slicer exchange; read also takes
reports written by dcmqi, highdicom or other tools.
"""
EPILOG = """\
Examples:
  oncoqi report write --source CT_DIR --labels lesions.nrrd --meta meta.json \\
      --out report
  oncoqi report read report/sr.dcm
  oncoqi report read report/seg.dcm --source CT_DIR --export edited
"""

#: ``oncoqi report write --help``: the --meta format, so that no other page is needed.
WRITE_DESCRIPTION = """\
Write label images on a CT or PET series as a DICOM SEG + SR TID 1500 report.

The SEG (seg.dcm) and the measurement report (sr.dcm) go into --out.
Without --measurements the SR gets, per segment, the volume and the mean,
minimum, maximum and SD in HU (CT) or SUVbw (PET, plus SUVpeak). Both files
are built before either is written, and an existing seg.dcm or sr.dcm is
replaced only with --force.
"""
WRITE_EPILOG = """\
The --meta file (JSON) lists the segments. Minimal example, one segment
with voxel value 1 in the first --labels file:

  {"segments": [{"label": "GTV", "label_value": 1,
                 "category": "morphologically_abnormal_structure",
                 "type": "neoplasm"}]}

Segment keys:
  label, category, type  required; category and type are codes
  labels_file            0-based index of its --labels file (default 0)
  label_value            its voxel value in that file (default 1)
  algorithm              {"type": "AUTOMATIC", "name": "OncoQI lung",
                         "version": "0.1"}; type AUTOMATIC, SEMIAUTOMATIC or
                         MANUAL (the default); name required unless MANUAL
  anatomic_region, anatomic_region_modifier, type_modifier
                         optional codes, e.g. "lung" and "left"
  description, tracking_id, tracking_uid, color ([r, g, b], 0-255)
                         optional
A code is {"value": "59441001", "scheme": "SCT", "meaning": "Lymph node"}
or one of these names: tissue, anatomical_structure,
morphologically_abnormal_structure, neoplasm, primary_neoplasm,
secondary_neoplasm, mass, nodule, lymph_node, lung, liver, thorax,
mediastinum, left, right, bilateral.
Optional document keys: series_description, series_number, instance_number,
content_label, content_description, content_creator, body_part_examined,
clinical_trial_series_id, clinical_trial_time_point_id,
clinical_trial_coordinating_center.
Unknown keys are errors, so that a typo cannot drop a code. dcmqi's
itkimage2segimage JSON (segmentAttributes) is accepted as it is. Full
reference, and the --measurements format: Docs/reporting.md.

Examples:
  oncoqi report write --source CT_DIR --labels lesions.nrrd --meta meta.json \\
      --out report
  oncoqi report write --source PET_DIR --labels gtv.nrrd --labels nodes.nrrd \\
      --meta meta.json --measurements measurements.json --out report --force
"""

#: ``oncoqi report read --help``.
READ_DESCRIPTION = """\
Print what a DICOM SEG or SR TID 1500 holds: segments or measurements.

For a SEG: one line per segment (number, label, type, voxels, volume);
--export DIR also writes its label images (labels-0.nrrd, ...) and a
meta.json that report write accepts back, so a SEG can be edited and written
again. For an SR: the measurement table as tab-separated text. --json prints
everything as JSON.
"""
READ_EPILOG = """\
Examples:
  oncoqi report read report/sr.dcm
  oncoqi report read report/sr.dcm --json
  oncoqi report read report/seg.dcm --source CT_DIR --export edited
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi report`` and its sub-commands."""
    parser = sub.add_parser(
        "report",
        help="write and read DICOM SEG + SR TID 1500 reports",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rsub = parser.add_subparsers(dest="report_command", metavar="ACTION")
    rsub.required = True

    write = rsub.add_parser(
        "write",
        help="write seg.dcm and sr.dcm from label images on a CT/PET series",
        description=WRITE_DESCRIPTION,
        epilog=WRITE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    write.add_argument("--source", required=True, metavar="DIR", help="folder of the source CT or PET series")
    write.add_argument("--series-uid", help="SeriesInstanceUID of the source when DIR holds several image series")
    write.add_argument(
        "--labels",
        required=True,
        action="append",
        metavar="FILE",
        help="label image (NRRD/NIfTI) on the source grid; repeat for several (labels_file 0, 1...)",
    )
    write.add_argument(
        "--meta",
        required=True,
        metavar="META.json",
        help="segment metadata: OncoQI JSON ('segments', see below) or dcmqi JSON ('segmentAttributes')",
    )
    write.add_argument(
        "--measurements",
        metavar="M.json",
        help="observer, flags and measurements: OncoQI JSON ('groups') or dcmqi TID 1500 JSON",
    )
    write.add_argument("--out", required=True, metavar="DIR", help="output folder for seg.dcm and sr.dcm")
    write.add_argument("--keep-empty-frames", action="store_true", help="write frames without segment voxels too")
    write.add_argument("--force", action="store_true", help="overwrite seg.dcm and sr.dcm already in --out")
    write.set_defaults(func=_write, output_folders=("out",), run_command="report write", input_arg="source")

    read = rsub.add_parser(
        "read",
        help="print what a DICOM SEG or SR TID 1500 holds",
        description=READ_DESCRIPTION,
        epilog=READ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    read.add_argument("path", metavar="FILE", help="a SEG or SR file")
    read.add_argument("--json", action="store_true", help="print JSON instead of a table")
    read.add_argument("--source", metavar="DIR", help="SEG: put the labels on this series' grid")
    read.add_argument("--export", metavar="DIR", help="SEG: write labels-N.nrrd and meta.json (OncoQI JSON) into DIR")
    read.set_defaults(func=_read)


def _write(args: argparse.Namespace) -> int:
    written = write_report(
        args.source,
        args.labels,
        args.meta,
        args.out,
        args.measurements,
        series_uid=args.series_uid,
        omit_empty_frames=not args.keep_empty_frames,
        force=args.force,
    )
    for warning in written.report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    seg = written.segmentation
    print(f"{written.seg_path}\tSEG\t{len(seg.SegmentSequence)} segments, {seg.NumberOfFrames} frames")
    n = sum(len(g.measurements) for g in written.report.groups)
    print(f"{written.sr_path}\tSR\t{len(written.report.groups)} measurement groups, {n} measurements")
    return 0


def _export(data: SegmentationData, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for n, label in enumerate(data.labels):
        write_volume(label, out / f"labels-{n}.nrrd")
    write_text(json.dumps(data.metadata.to_json(), indent=2) + "\n", out / "meta.json")
    print(f"{out}: {len(data.labels)} label image(s) and meta.json", file=sys.stderr)


def _read(args: argparse.Namespace) -> int:
    data = read_report(args.path, args.source)
    if isinstance(data, SegmentationData):
        if args.export:
            _export(data, Path(args.export))
        if args.json:
            print(json.dumps(data.summary(), indent=2))
            return 0
        summary = data.summary()
        if summary["metadata"].get("background"):  # a label-map SEG's segment 0
            print(f"0\t{summary['metadata']['background']}\tbackground\t-\t-")
        for seg in summary["metadata"]["segments"]:
            volume = f"{seg['volume_ml']:.3f} ml" if "volume_ml" in seg else "-"
            fields = (seg["segment_number"], seg["label"], seg["type"]["meaning"], f"{seg['voxels']} voxels", volume)
            print("\t".join(str(f) for f in fields))
        return 0
    if args.export:
        raise InputError(f"{args.path}: --export writes the label images of a SEG; this file is an SR")
    if args.json:
        print(json.dumps(data.to_json(), indent=2))
    else:
        sys.stdout.write(data.to_csv(delimiter="\t"))
    return 0
