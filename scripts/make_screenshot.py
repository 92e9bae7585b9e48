"""Make the Extensions Index screenshot ``Docs/images/screenshot-lung-tumor-segmentation.png``.

The picture shows real results of the project's own code, laid out like the Slicer module:
the lung tumour segmentation of the core (:func:`oncoqi.lung.segment.segment_ct` with the
shipped model ``src/oncoqi/data/lung_unet.onnx``) run on the **embedded sample**, the synthetic
PET/CT phantom ``src/oncoqi/data/sample_petct.zip`` (made by ``scripts/make_sample.py``, drawn again on
2026-12-07; a named check, not a test set; no patient data). On the left, a light-grey module panel titled "Lung Tumor Segmentation (OncoQI)"
with the lesion table as the module's table node shows it (segment name, volume, RECIST long and
short axis, side, confidence); on the right, a slice view on a black background: the axial CT
slice (lung window) through GTV-1, the largest lesion (of its slices, the one that shows the most
lesions), with the outlines and names of the lesions on it (GTV-1 in one colour, the other lesions
in another) and GTV-1's RECIST long axis when the slice is its RECIST slice.

It is drawn with matplotlib (Agg) outside Slicer, so it is a faithful picture of the results and
the table, not a capture of a running Slicer window. Regenerate it from the repository root::

    .venv/bin/python scripts/make_screenshot.py [--out Docs/images/screenshot-lung-tumor-segmentation.png]

It takes about 20-60 s on a laptop CPU (the network runs on the CPU) and prints what it made.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from oncoqi import __version__  # noqa: E402
from oncoqi.dicom.seg.codes import DEFAULT_COLORS  # noqa: E402
from oncoqi.dicom.source import load_source  # noqa: E402
from oncoqi.lung.naming import lesion_name  # noqa: E402
from oncoqi.lung.segment import default_model_path, segment_ct  # noqa: E402
from oncoqi.phantom.sample import extract_sample  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Docs" / "images" / "screenshot-lung-tumor-segmentation.png"
WIDTH_PX, HEIGHT_PX, DPI = 1280, 720, 100
#: Lung window (width 1500 HU, level -600 HU), as Slicer's "CT-Lung" preset.
LUNG_WINDOW = (-1350.0, 150.0)
#: Outline colours: GTV-1 takes the first colour of the DICOM SEG default palette (as in the module),
#: every other lesion the second.
GTV_COLOUR = tuple(c / 255.0 for c in DEFAULT_COLORS[0])
OTHER_COLOUR = tuple(c / 255.0 for c in DEFAULT_COLORS[1])
PANEL_GREY = "#e6e6e6"
#: The table's columns: header and how a cell is written (the module's table node columns of the same name).
COLUMNS = (
    ("Segment", lambda m: lesion_name(m.label)),
    ("Volume\n(ml)", lambda m: f"{m.volume_ml:.1f}"),
    ("RECIST\n(mm)", lambda m: f"{m.recist_mm:.1f}"),
    ("Perpendicular\n(mm)", lambda m: f"{m.perpendicular_mm:.1f}"),
    ("Side", lambda m: m.side),
    ("Confidence", lambda m: "" if m.confidence is None else f"{m.confidence:.2f}"),
)


def lps_to_index(ct, point) -> np.ndarray:
    """Continuous (i, j, k) index of an LPS point on the CT grid."""
    scaled = np.asarray(ct.direction) * np.asarray(ct.spacing)[None, :]
    return np.linalg.solve(scaled, np.asarray(point, dtype=float) - np.asarray(ct.origin))


def choose_slice(labels, lesions) -> int:
    """The axial slice through GTV-1 that shows the most lesions; among those, the most of GTV-1."""
    gtv_slices = np.nonzero((labels.array == lesions[0].label).any(axis=(1, 2)))[0]
    best = None
    for k in gtv_slices:
        present = {int(v) for v in np.unique(labels.array[k]) if v}
        score = (len(present), int((labels.array[k] == lesions[0].label).sum()), k == lesions[0].recist_slice)
        if best is None or score > best[0]:
            best = (score, int(k))
    return best[1]


def draw_slice_view(ax, ct, labels, lesions, k: int) -> None:
    """Axial slice ``k`` in the lung window with the lesion outlines and names (and GTV-1's RECIST axis if on it)."""
    gtv = lesions[0]
    plane = ct.array[k].astype(float)
    lab = labels.array[k]
    # Slicer's axial view: patient right on the screen's left, anterior at the top. Flip the array
    # where the CT's axes run the other way (LPS: +i towards the left, +j towards posterior).
    flip_cols = ct.direction[0, 0] < 0
    flip_rows = ct.direction[1, 1] < 0
    if flip_cols:
        plane, lab = plane[:, ::-1], lab[:, ::-1]
    if flip_rows:
        plane, lab = plane[::-1, :], lab[::-1, :]
    rows, cols = plane.shape
    sx, sy = ct.spacing[0], ct.spacing[1]
    extent = (0, cols * sx, rows * sy, 0)  # mm, so the pixels keep their true proportions
    ax.imshow(plane, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1], extent=extent, interpolation="bilinear")
    xs = (np.arange(cols) + 0.5) * sx
    ys = (np.arange(rows) + 0.5) * sy
    for m in lesions:
        mask = lab == m.label
        if not mask.any():
            continue
        colour = GTV_COLOUR if m.label == 1 else OTHER_COLOUR
        ax.contour(xs, ys, mask.astype(float), levels=[0.5], colors=[colour], linewidths=2.0)
        r, c = np.nonzero(mask)
        ax.annotate(
            lesion_name(m.label),
            xy=(xs[c].max(), ys[r].min()),
            xytext=(12, -12),
            textcoords="offset points",
            color=colour,
            fontsize=12,
            fontweight="bold",
            arrowprops={"arrowstyle": "-", "color": colour, "lw": 1.0},
        )
    if k == gtv.recist_slice:  # GTV-1's RECIST long axis, from its LPS end points
        ends = np.array([lps_to_index(ct, p) for p in gtv.recist_endpoints_lps_mm])
        ci, rj = ends[:, 0], ends[:, 1]
        if flip_cols:
            ci = cols - 1 - ci
        if flip_rows:
            rj = rows - 1 - rj
        ax.plot((ci + 0.5) * sx, (rj + 0.5) * sy, color="#ffd400", lw=1.5, marker="o", ms=3)
    ax.set_xlim(0, cols * sx)
    ax.set_ylim(rows * sy, 0)
    ax.set_axis_off()
    # Slicer-like view annotations
    ax.text(0.01, 0.99, "R", transform=ax.transAxes, color="#f0f0f0", fontsize=11, va="top")
    ax.text(
        0.99,
        0.99,
        f"Axial  S: {ct.index_to_lps(np.array([0.0, 0.0, float(k)]))[2]:.1f} mm",
        transform=ax.transAxes,
        color="#f0f0f0",
        fontsize=10,
        va="top",
        ha="right",
    )
    ax.text(
        0.01,
        0.01,
        f"CT  W 1500 / L -600\nslice {k + 1} of {ct.array.shape[0]}",
        transform=ax.transAxes,
        color="#f0f0f0",
        fontsize=10,
        va="bottom",
    )


def draw_panel(fig, lesions, threshold: float, n_slices: int) -> None:
    """The light-grey module panel: title, the inputs and the lesion table."""
    ax = fig.add_axes((0.0, 0.0, 0.47, 1.0))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    ax.add_patch(plt.Rectangle((0, 0), 1, 1, color=PANEL_GREY, zorder=0))
    ax.add_patch(plt.Rectangle((0, 0.915), 1, 0.085, color="#d2d2d2", zorder=0))
    ax.text(0.03, 0.957, "Lung Tumor Segmentation (OncoQI)", fontsize=17, fontweight="bold", va="center")
    y = 0.86
    for key, value in (
        ("Input CT volume", "CT (embedded sample: synthetic PET/CT phantom)"),
        ("Model", f"{default_model_path().name} (oncoqi {__version__})"),
        ("Threshold", f"{threshold:.2f}"),
        ("Output segmentation", f"{len(lesions)} lesion(s) on {n_slices} axial slices"),
    ):
        ax.text(0.03, y, key + ":", fontsize=10.5, va="center", color="#333333")
        ax.add_patch(
            FancyBboxPatch((0.33, y - 0.022), 0.64, 0.044, boxstyle="round,pad=0.003", fc="white", ec="#a0a0a0", lw=0.8)
        )
        ax.text(0.345, y, value, fontsize=9.5, va="center")
        y -= 0.065
    ax.add_patch(
        FancyBboxPatch((0.03, y - 0.03), 0.94, 0.055, boxstyle="round,pad=0.003", fc="#cfd8e3", ec="#8da0b8", lw=0.8)
    )
    ax.text(0.5, y - 0.002, "Apply", fontsize=11, ha="center", va="center")
    y -= 0.09
    ax.text(0.03, y, "Lesions", fontsize=12.5, fontweight="bold", va="center")
    y -= 0.03
    widths = np.array([0.17, 0.15, 0.15, 0.21, 0.11, 0.15])
    x0 = 0.03 + np.concatenate([[0.0], np.cumsum(widths)[:-1]])
    row_h, header_h = 0.048, 0.075
    header_y = y - header_h
    ax.add_patch(plt.Rectangle((0.03, header_y), widths.sum(), header_h, fc="#d9d9d9", ec="#a0a0a0", lw=0.8))
    for (title, _), x, w in zip(COLUMNS, x0, widths, strict=True):
        ax.text(x + w / 2, header_y + header_h / 2, title, fontsize=9, fontweight="bold", ha="center", va="center")
    for n, m in enumerate(lesions):
        ry = header_y - (n + 1) * row_h
        ax.add_patch(
            plt.Rectangle(
                (0.03, ry), widths.sum(), row_h, fc="white" if n % 2 == 0 else "#f4f4f4", ec="#c8c8c8", lw=0.6
            )
        )
        colour = GTV_COLOUR if m.label == 1 else OTHER_COLOUR
        ax.add_patch(plt.Rectangle((x0[0] + 0.008, ry + row_h * 0.3), 0.018, row_h * 0.4, color=colour))
        for (_, cell), x, w in zip(COLUMNS, x0, widths, strict=True):
            text = cell(m)
            if cell is COLUMNS[0][1]:
                ax.text(x + 0.034, ry + row_h / 2, text, fontsize=9.5, va="center")
            else:
                ax.text(x + w / 2, ry + row_h / 2, text, fontsize=9.5, ha="center", va="center")
    ax.text(
        0.03,
        0.03,
        "Embedded sample (synthetic phantom), segmented by the shipped model.",
        fontsize=8.5,
        color="#555555",
        style="italic",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write (default: %(default)s)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="oncoqi-screenshot-") as tmp:
        sample = extract_sample(Path(tmp) / "sample")
        ct = load_source(sorted(str(p) for p in (sample / "CT").glob("*.dcm"))).load_image()
    seg = segment_ct(ct, name="embedded sample CT")
    if not seg.lesions:
        print("error: the segmentation found no lesion in the sample; nothing to draw", file=sys.stderr)
        return 1
    fig = plt.figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="black")
    draw_panel(fig, seg.lesions, seg.threshold, ct.array.shape[0])
    view = fig.add_axes((0.48, 0.01, 0.51, 0.98), facecolor="black")
    k = choose_slice(seg.labels, seg.lesions)
    draw_slice_view(view, ct, seg.labels, seg.lesions, k)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="black")
    plt.close(fig)
    # Quantise to a palette: the picture has few colours, and the PNG stays small.
    picture = PILImage.open(buffer).convert("RGB").quantize(colors=256, method=PILImage.Quantize.MEDIANCUT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.out, format="PNG", optimize=True)
    size = picture.size
    print(
        f"wrote {args.out} ({size[0]}x{size[1]} px, {args.out.stat().st_size / 1024:.0f} kB) in "
        f"{time.perf_counter() - start:.0f} s: axial slice {k + 1} of the embedded sample CT "
        f"(embedded synthetic phantom), {len(seg.lesions)} lesion(s):"
    )
    for m in seg.lesions:
        confidence = "-" if m.confidence is None else f"{m.confidence:.2f}"
        print(
            f"  {lesion_name(m.label)}: {m.volume_ml:.1f} ml, RECIST {m.recist_mm:.1f} x {m.perpendicular_mm:.1f} mm,"
            f" {m.side}, confidence {confidence}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
