"""Read LIDC-IDRI reader annotations (XML) into nodule masks and consensus labels.

The LIDC-IDRI chest CTs come with one XML file per series holding up to four blinded and
unblinded reading sessions, one per radiologist. Each nodule a reader marked as 3 mm or more
carries characteristics (malignancy, spiculation, ...) and one outline per slice: the pixel
coordinates (column ``xCoord``, row ``yCoord``) of its boundary on the slice at
``imageZposition``, with ``inclusion`` FALSE for an excluded hole. Smaller nodules and
non-nodules are single points and have no outline; they are kept as readings but give no mask.

Following the LIDC conventions (and pylidc), the outline pixels themselves belong to the nodule:
the mask is the filled polygon united with its boundary pixels, minus the interiors of the
exclusion outlines (an exclusion outline's own pixels stay part of the nodule). The same physical nodule is outlined by several readers; :func:`cluster_nodules`
groups the outlines that overlap, and :func:`consensus_label` keeps the voxels a given fraction
of a group's readers agree on (50 % by default, the usual LIDC consensus).

The four XML files of one series often repeat the same sessions; identical sessions are read
once.
"""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.draw import polygon, polygon_perimeter

from oncoqi.errors import InputError
from oncoqi.image import Image

_NS = {"n": "http://www.nih.gov"}
#: How far (mm) an outline's ``imageZposition`` may be from a slice plane of the CT.
Z_TOLERANCE_MM = 0.1


class LidcError(InputError):
    """A LIDC XML file cannot be read or does not fit the CT it is applied to."""


@dataclass(frozen=True)
class Outline:
    """One slice of one nodule as a reader drew it."""

    z_mm: float
    sop_instance_uid: str
    inclusion: bool
    columns: np.ndarray
    rows: np.ndarray


@dataclass
class Nodule:
    """A nodule of one reading session.

    Attributes
    ----------
    nodule_id
        The reader's own identifier (unique only within the session).
    reader
        Index of the reading session (0-based over the sessions read).
    characteristics
        The LIDC ratings (``malignancy``, ``spiculation``, ...), empty for nodules < 3 mm.
    outlines
        One entry per outlined slice; a nodule < 3 mm has a single one-point outline.
    """

    nodule_id: str
    reader: int
    characteristics: dict[str, int] = field(default_factory=dict)
    outlines: list[Outline] = field(default_factory=list)

    @property
    def outlined(self) -> bool:
        """True for nodules >= 3 mm, the only ones LIDC readers outline."""
        return bool(self.characteristics) and any(o.columns.size > 1 for o in self.outlines)


@dataclass
class LidcReadings:
    """All reading sessions of one series."""

    series_uid: str
    readers: int
    nodules: list[Nodule]

    @property
    def outlined(self) -> list[Nodule]:
        """The nodules with outlines (>= 3 mm)."""
        return [n for n in self.nodules if n.outlined]


def _text(el: ET.Element, path: str, file: Path) -> str:
    value = el.findtext(path, namespaces=_NS)
    if value is None:
        raise LidcError(f"{file}: <{path.split(':')[-1]}> missing in <{el.tag.split('}')[-1]}>")
    return value.strip()


def _outline(roi: ET.Element, file: Path) -> Outline:
    points = roi.findall("n:edgeMap", _NS)
    if not points:
        raise LidcError(f"{file}: <roi> without <edgeMap> points")
    cols = np.array([int(_text(p, "n:xCoord", file)) for p in points])
    rows = np.array([int(_text(p, "n:yCoord", file)) for p in points])
    return Outline(
        z_mm=float(_text(roi, "n:imageZposition", file)),
        sop_instance_uid=roi.findtext("n:imageSOP_UID", default="", namespaces=_NS).strip(),
        inclusion=_text(roi, "n:inclusion", file).upper() == "TRUE",
        columns=cols,
        rows=rows,
    )


def read_lidc_xml(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> LidcReadings:
    """Read one or more LIDC XML files of the same series.

    Parameters
    ----------
    paths
        A file, a folder (every ``*.xml`` in it) or a list of files.

    Returns
    -------
    LidcReadings
        The distinct reading sessions' nodules; repeated identical sessions are read once.

    Raises
    ------
    LidcError
        When a file is not LIDC XML, lacks required elements, or the files name different series.
    """
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.glob("*.xml")) if p.is_dir() else [p]
    else:
        files = [Path(p) for p in paths]
    if not files:
        raise LidcError(f"{paths}: no LIDC XML files")
    seen: set[str] = set()
    nodules: list[Nodule] = []
    series: set[str] = set()
    for file in files:
        try:
            root = ET.parse(file).getroot()
        except (ET.ParseError, OSError) as exc:
            raise LidcError(f"{file}: not readable as XML ({exc})") from exc
        if not root.tag.endswith("LidcReadMessage"):
            raise LidcError(f"{file}: not a LIDC read message (root <{root.tag}>)")
        uid = root.findtext("n:ResponseHeader/n:SeriesInstanceUid", default="", namespaces=_NS).strip()
        if uid:
            series.add(uid)
        for session in root.findall("n:readingSession", _NS):
            digest = hashlib.sha256(ET.tostring(session)).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            reader = len(seen) - 1
            for el in session.findall("n:unblindedReadNodule", _NS):
                chars = el.find("n:characteristics", _NS)
                ratings = {c.tag.split("}")[-1]: int(c.text) for c in chars or [] if (c.text or "").strip().isdigit()}
                nodules.append(
                    Nodule(
                        nodule_id=_text(el, "n:noduleID", file),
                        reader=reader,
                        characteristics=ratings,
                        outlines=[_outline(r, file) for r in el.findall("n:roi", _NS)],
                    )
                )
    if len(series) > 1:
        raise LidcError(f"{[str(f) for f in files]}: the files annotate {len(series)} different series")
    return LidcReadings(series_uid=series.pop() if series else "", readers=len(seen), nodules=nodules)


def nodule_mask(nodule: Nodule, reference: Image) -> np.ndarray:
    """Rasterise one reader's nodule onto the CT it was drawn on.

    Parameters
    ----------
    nodule
        An outlined nodule.
    reference
        The annotated CT (axial slices; pixel coordinates are its columns and rows).

    Returns
    -------
    numpy.ndarray
        Boolean mask ``[k, j, i]``: filled outlines and their boundary pixels, minus exclusions.

    Raises
    ------
    LidcError
        When an outline's z position matches no slice of ``reference``.
    """
    z_of_slice = reference.index_to_lps(
        np.column_stack([np.zeros(reference.size[2]), np.zeros(reference.size[2]), np.arange(reference.size[2])])
    )[:, 2]
    mask = np.zeros(reference.array.shape, dtype=bool)
    _, n_rows, n_cols = reference.array.shape
    for outline in sorted(nodule.outlines, key=lambda o: not o.inclusion):  # inclusions first
        k = int(np.argmin(np.abs(z_of_slice - outline.z_mm)))
        if abs(z_of_slice[k] - outline.z_mm) > Z_TOLERANCE_MM:
            raise LidcError(
                f"nodule {nodule.nodule_id} of reader {nodule.reader}: outline at z = {outline.z_mm} mm "
                f"matches no slice of the CT (nearest {z_of_slice[k]:.3f} mm)"
            )
        rr, cc = polygon(outline.rows, outline.columns, shape=(n_rows, n_cols))
        pr, pc = polygon_perimeter(outline.rows, outline.columns, shape=(n_rows, n_cols), clip=True)
        if outline.inclusion:
            mask[k, rr, cc] = True
            mask[k, pr, pc] = True
        else:  # the hole is the strict interior: the exclusion outline's own pixels stay nodule
            hole = np.zeros((n_rows, n_cols), dtype=bool)
            hole[rr, cc] = True
            hole[pr, pc] = False
            mask[k] &= ~hole
    return mask


def cluster_nodules(readings: LidcReadings, reference: Image) -> list[list[tuple[Nodule, np.ndarray]]]:
    """Group the outlined nodules of all readers that overlap into physical nodules.

    Two readers' nodules belong together when their masks share a voxel (or a chain of such
    overlaps links them). Each nodule comes with its voxels as sorted flat indices into
    ``reference.array`` (a whole-volume mask per outline would cost tens of MB each). Groups are
    sorted by descending number of readers, then by position.
    """
    items = [(n, np.flatnonzero(nodule_mask(n, reference))) for n in readings.outlined]
    parent = list(range(len(items)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if np.intersect1d(items[a][1], items[b][1], assume_unique=True).size:
                parent[find(a)] = find(b)
    groups: dict[int, list[tuple[Nodule, np.ndarray]]] = {}
    for idx, item in enumerate(items):
        groups.setdefault(find(idx), []).append(item)
    return sorted(groups.values(), key=lambda g: (-len(g), int(g[0][1].min())))


def consensus_label(readings: LidcReadings, reference: Image, level: float = 0.5, min_readers: int = 1) -> Image:
    """A label image with one label per physical nodule, from the readers' agreement.

    Parameters
    ----------
    readings
        The reading sessions of the series.
    reference
        The annotated CT.
    level
        Fraction of the group's outlines that must contain a voxel (0.5: at least half).
    min_readers
        Groups outlined by fewer readers are left out (e.g. 3 for "nodules >= 3 mm by 3 of 4").

    Returns
    -------
    Image
        On ``reference``'s grid: 0 background, 1..n nodules (most readers first); metadata
        ``nodules`` lists per label the number of readers and their mean malignancy rating.
    """
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    label = np.zeros(reference.array.size, dtype=np.uint8)
    info = []
    for group in cluster_nodules(readings, reference):
        if len(group) < min_readers:
            continue
        voxels, votes = np.unique(np.concatenate([v for _, v in group]), return_counts=True)
        agreed = voxels[votes >= level * len(group)]
        n = len(info) + 1
        label[agreed[label[agreed] == 0]] = n
        ratings = [g[0].characteristics["malignancy"] for g in group if "malignancy" in g[0].characteristics]
        info.append(
            {"label": n, "readers": len(group), "malignancy_mean": float(np.mean(ratings)) if ratings else None}
        )
    return reference.with_array(
        label.reshape(reference.array.shape), nodules=info, source="LIDC XML", series_uid=readings.series_uid
    )
