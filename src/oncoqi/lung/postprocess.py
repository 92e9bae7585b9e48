"""From a tumour probability volume to a lesion label map: threshold, 3D components, ordering.

The published pipeline kept only the largest 3D component, so a second tumour or a satellite
nodule vanished from its output. Here every component is kept as its own lesion: label 1 is the
largest (GTV-1), labels 2..n the others by decreasing volume, so that a reader can review or
delete each one. Small or single-slice components can be dropped explicitly, and so can
components that a vessel runs through (:func:`through_going`), the tops of the diaphragm domes
(:func:`dome_caps`), components that lie mostly outside the lungs, and thin sheets
(:func:`compactness`).

Why the sheet test: a lung tumour is a compact mass, thick for its length; the synthetic
tumours (round, lobulated, spiculated) are at least 0.72 as thick as they are long
(:func:`compactness` of the 14 tumours in the first 12 cases of test set 1000). A component three
times longer than it is thick is a band along the pleura: the partial volume of the chest wall on
thick slices, pleural thickening, a film of dependent density; on a real chest CT (CTChest4) a
network's remaining false lesions were such bands, 0.11-0.22 thick for their length. But a real
tumour that the network finds only in part can leave such fragments too: on LUNG1-001 a 14.7 ml
piece of GTV-1 found by one network was 0.24. So the rule is off unless a model's metadata sets
``oncoqi.min_compactness``; :data:`MIN_COMPACTNESS` is the bound that removed CTChest4's bands.

Why the lung test: the search region is the lungs, their mirror image and 5 mm beyond, so that a
tumour that collapses its lung or abuts the mediastinum is searched for. The price is that the
hilum, the mediastinal border and the chest wall are searched too, and there a real CT has
structures no phantom has. On the real validation CTs nearly every false lesion of the
neighbouring-slice network lay at least 77 % outside the tight lung mask (most over 94 %), while
tumours in the lung lie inside it (its holes are filled). The cost is a tumour fused with the
mediastinum or hilum, which is mostly outside the aerated lung: the rule is tuned per model like the
others (0 switches it off), and its effect on LUNG1-001's perihilar GTV-1 is reported.

Why the vessel test: the network sees one axial slice, where a vessel running across the slices
is a round, dense disc inside the lung, just like a nodule; only the third dimension tells them
apart. A tumour ends: a few millimetres beyond its top and bottom slices there is lung over its
footprint. A vessel goes on: beyond both ends of the detected part, dense tissue still covers most
of the footprint. A component is dropped only when this holds at *both* ends, so a tumour with a
feeding vessel, or one that abuts the diaphragm or apex on one side, is kept.

Why the dome test: near the lung bases an axial slice cuts the top of each diaphragm dome (liver on
the right, spleen or stomach on the left) as a round, dense disc surrounded by lung, and thick
slices blur the dome's top into a faint nodule. One slice further down, the disc is the upper
abdomen; one slice up, it is lung. On the synthetic test set nearly every false lesion of the
mirrored-pass network was such a cap, 1 to 3 slices thick, with dense tissue under its whole
footprint and lung over it. A tumour that sits on the dome looks the same from above and below,
so the test costs those tumours: it is tuned per model (off unless the metadata sets
``oncoqi.dome_fraction``). A dome also widens downwards, so dense tissue still covers the cap's
footprint :data:`DOME_DEPTH_MM` below it; the test asks for that too. Without it, the test dropped
the found top of a tumour whose lower part the network missed (5 mm below that top there is more
tumour, 10 mm below there is lung): synthetic test case 7 lost its only find this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy import ndimage

from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image

#: Probability at or above which a voxel is tumour by default.
DEFAULT_THRESHOLD = 0.5
#: 26-neighbourhood (faces, edges and corners), as the published pipeline's connected components.
FULL_CONNECTIVITY = np.ones((3, 3, 3), bool)
#: CT number (HU) above which a voxel is dense tissue, not aerated lung, for the vessel test.
DENSE_HU = -400.0
#: How far below a diaphragm dome's cap the dome still covers the cap's footprint (see the module
#: documentation); the top of the liver or spleen is that wide 15 mm down, a missed lower part of a
#: tumour is not.
DOME_DEPTH_MM = 15.0
#: A bound under which components are sheets (see the module documentation): under half the
#: least compact synthetic tumour. Not applied unless asked for.
MIN_COMPACTNESS = 0.3


def compactness(mask: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """How thick a component is for its length: about 1 for a cube, near 0 for a thin sheet or rod.

    Parameters
    ----------
    mask
        The component (bool, array order ``k, j, i``).
    spacing
        Voxel size (mm) along ``i, j, k``.

    Returns
    -------
    float
        The diameter of the largest inscribed ball (twice the largest distance from a voxel to
        the outside, in mm) over the length along the principal axis (``sqrt(12)`` standard
        deviations of the voxel positions, the length of a uniform rod). A ball gives about 1.3,
        a cube about 1.0 and a 4 mm thick plate 40 mm across about 0.1; components of fewer than
        three voxels give 1 (nothing to measure).
    """
    sampling = tuple(float(s) for s in spacing[::-1])
    points = np.argwhere(mask) * np.asarray(sampling)
    if len(points) < 3:
        return 1.0
    spread = float(np.linalg.eigvalsh(np.cov(points.T)).max())
    if spread <= 0.0:
        return 1.0
    inside = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=sampling)
    return 2.0 * float(inside.max()) / np.sqrt(12.0 * spread)


def dense_beyond(
    components: np.ndarray, count: int, ct: Image, fraction: float, distance_mm: float = 5.0, *, clamp: bool = False
) -> np.ndarray:
    """Whether dense tissue covers each component's footprint beyond its first and last slice.

    Parameters
    ----------
    components, count
        Component labels 1..count (as :func:`scipy.ndimage.label` gives) on ``ct``'s grid.
    ct
        The CT (HU).
    fraction
        An end "goes on" when at least this fraction of the component's footprint (the union of
        its slices' masks) is denser than :data:`DENSE_HU` ``distance_mm`` beyond it.
    distance_mm
        How far beyond the first and last slices to look (at least one slice).
    clamp
        Look at the scan's first or last slice when ``distance_mm`` lies beyond it (as long as it
        lies beyond the component), instead of saying the end does not go on.

    Returns
    -------
    numpy.ndarray
        bool ``(count + 1, 2)`` (row 0 unused): column 0 the end at the lower ``k``, column 1 the
        end at the higher ``k``. An end at the edge of the scan does not go on (nothing is known
        beyond it).
    """
    step = max(1, int(round(distance_mm / ct.spacing[2])))
    slices = ct.array.shape[0]
    result = np.zeros((count + 1, 2), bool)
    for label, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        footprint = (components[box] == label).any(axis=0)
        lower, upper = box[0].start - step, box[0].stop - 1 + step
        if clamp:  # no further than the scan's edge slice, unless the component touches that edge
            if box[0].start > 0:
                lower = max(lower, 0)
            if box[0].stop < slices:
                upper = min(upper, slices - 1)
        for end, k in enumerate((lower, upper)):
            if 0 <= k < slices:
                result[label, end] = float((ct.array[k][box[1:]][footprint] > DENSE_HU).mean()) >= fraction
    return result


def through_going(
    components: np.ndarray, count: int, ct: Image, fraction: float, distance_mm: float = 5.0
) -> np.ndarray:
    """Which components a dense structure runs through (see the module documentation).

    Parameters and ends as in :func:`dense_beyond`.

    Returns
    -------
    numpy.ndarray
        bool of length ``count + 1`` (index 0 unused): True for components that go on at both ends.
    """
    return dense_beyond(components, count, ct, fraction, distance_mm).all(axis=1)


def dome_caps(
    components: np.ndarray,
    count: int,
    ct: Image,
    fraction: float,
    distance_mm: float = 5.0,
    depth_mm: float = DOME_DEPTH_MM,
) -> np.ndarray:
    """Which components are the top of a diaphragm dome: dense tissue below them, none above.

    Parameters and ends as in :func:`dense_beyond`; below and above follow the patient (LPS z),
    whichever way the slices are stored. ``depth_mm``: the dense tissue must also cover the
    footprint this far below (or at the scan's last slice below, if nearer; see the module
    documentation).

    Returns
    -------
    numpy.ndarray
        bool of length ``count + 1`` (index 0 unused): True for components that go on at their
        inferior end, ``distance_mm`` and ``depth_mm`` beyond it, but not at their superior end.
    """
    deep = dense_beyond(components, count, ct, fraction, depth_mm, clamp=True)
    return _capped(dense_beyond(components, count, ct, fraction, distance_mm), deep, ct)


def _capped(ends: np.ndarray, deep: np.ndarray, ct: Image) -> np.ndarray:
    """:func:`dome_caps` from :func:`dense_beyond`'s near and deep ends: dense below only."""
    below, above = (0, 1) if ct.direction[2, 2] > 0 else (1, 0)  # LPS z grows with k: k - 1 is below
    return ends[:, below] & deep[:, below] & ~ends[:, above]


@dataclass(frozen=True)
class LesionRules:
    """Which thresholded components are lesions: the post-processing a model carries in its metadata.

    Parameters
    ----------
    min_volume_ml
        Components smaller than this (ml) are dropped (0 keeps all).
    min_slices
        Components spanning fewer slices are dropped; 2 removes single-slice detections, which
        a slice-wise network produces as noise.
    min_confidence
        Components whose mean probability is lower are dropped (0 keeps all).
    through_fraction
        Components a vessel runs through are dropped (:func:`through_going` with this
        ``fraction``; None: no vessel test).
    dome_fraction
        Components that are the top of a diaphragm dome are dropped (:func:`dome_caps` with this
        ``fraction``; None: no dome test).
    min_lung_fraction
        Components with a smaller share of their voxels inside the tight lung mask are dropped (0
        keeps all; see the module documentation).
    min_compactness
        Components less compact (:func:`compactness`) are dropped as sheets (0 keeps all).

    Raises
    ------
    InputError
        When ``min_volume_ml < 0``, ``min_slices < 1``, or ``min_confidence`` or ``min_lung_fraction``
        is not in [0, 1).
    """

    min_volume_ml: float = 0.0
    min_slices: int = 1
    min_confidence: float = 0.0
    through_fraction: float | None = None
    min_lung_fraction: float = 0.0
    min_compactness: float = 0.0
    dome_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.min_volume_ml < 0 or self.min_slices < 1 or not 0.0 <= self.min_confidence < 1.0:
            raise InputError(
                f"min_volume_ml must be >= 0, min_slices >= 1 and min_confidence in [0, 1), got "
                f"{self.min_volume_ml}, {self.min_slices} and {self.min_confidence}"
            )
        if not 0.0 <= self.min_lung_fraction < 1.0:
            raise InputError(f"min_lung_fraction must be in [0, 1), got {self.min_lung_fraction}")
        if not 0.0 <= self.min_compactness < 1.0:
            raise InputError(f"min_compactness must be in [0, 1), got {self.min_compactness}")


@dataclass
class Components:
    """The 3D components of a thresholded probability volume, with what post-processing judges them by.

    Attributes
    ----------
    labels
        Component index per voxel (0 background, 1..n), 26-connected.
    volume_ml, slices, mean_probability
        ``(n,)`` per component ``i + 1``: volume, axial slices spanned, and mean probability inside
        (the lesion's confidence score, :mod:`oncoqi.lung.measure`).
    spacing
        Voxel size (mm) along ``i, j, k``, which :attr:`compactness` is measured in.
    lung_fraction
        ``(n,)``: share of each component's voxels inside the tight lung mask; None when no lung
        mask was given (then a lung rule cannot be applied).
    ct
        The CT on the same grid, which the vessel and dome tests look at; None when none was given
        (then those tests cannot be applied).
    """

    labels: np.ndarray
    volume_ml: np.ndarray
    slices: np.ndarray
    mean_probability: np.ndarray
    spacing: tuple[float, float, float]
    lung_fraction: np.ndarray | None = None
    ct: Image | None = None
    _ends: dict[tuple[float, float, bool], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.volume_ml)

    @cached_property
    def compactness(self) -> np.ndarray:
        """float ``(n,)``: :func:`compactness` of each component, measured only when a rule asks."""
        boxes = ndimage.find_objects(self.labels, max_label=len(self))
        return np.array(
            [compactness(self.labels[box] == label, self.spacing) for label, box in enumerate(boxes, start=1)]
        )

    def ends(self, fraction: float, distance_mm: float = 5.0, *, clamp: bool = False) -> np.ndarray:
        """bool ``(n, 2)``: :func:`dense_beyond` of each component, computed once per set of arguments.

        Raises
        ------
        ValueError
            When the components were found without the CT.
        """
        if self.ct is None:
            raise ValueError("the vessel and dome tests need the CT: pass ct= to find_components")
        key = (fraction, distance_mm, clamp)
        if key not in self._ends:
            self._ends[key] = dense_beyond(self.labels, len(self), self.ct, fraction, distance_mm, clamp=clamp)[1:]
        return self._ends[key]

    def vessel_test(self, fraction: float) -> np.ndarray:
        """bool ``(n,)``: components a vessel runs through (:func:`through_going`)."""
        return self.ends(fraction).all(axis=1)

    def dome_test(self, fraction: float) -> np.ndarray:
        """bool ``(n,)``: components that are the top of a diaphragm dome (:func:`dome_caps`)."""
        deep = self.ends(fraction, DOME_DEPTH_MM, clamp=True)
        return _capped(self.ends(fraction), deep, self.ct)  # type: ignore[arg-type]

    def dropped(self, rules: LesionRules) -> np.ndarray:
        """str ``(n,)``: ``""`` for a kept component, else why ``rules`` drop it (the first that
        applies: ``"smaller than min_volume_ml"``, ``"fewer slices than min_slices"``, ``"mean
        probability below min_confidence"``, ``"a vessel runs through it"``, ``"the top of a
        diaphragm dome"``, ``"mostly outside the lungs"``, ``"a thin sheet, not a compact
        lesion"``). Evaluation reports these for missed tumours. The vessel and dome tests are
        computed once per fraction, so tuning can try many rules on the same components.

        Raises
        ------
        ValueError
            When ``rules`` need the vessel or dome test and the components were found without the
            CT, or a lung fraction and they were found without a lung mask.
        """
        reasons = np.full(len(self), "", dtype=object)
        if rules.min_compactness > 0:
            reasons[self.compactness < rules.min_compactness] = "a thin sheet, not a compact lesion"
        if rules.min_lung_fraction > 0:
            if self.lung_fraction is None:
                raise ValueError("min_lung_fraction needs the lung mask: pass lungs= to find_components")
            reasons[self.lung_fraction < rules.min_lung_fraction] = "mostly outside the lungs"
        if rules.dome_fraction is not None:
            reasons[self.dome_test(rules.dome_fraction)] = "the top of a diaphragm dome"
        if rules.through_fraction is not None:
            reasons[self.vessel_test(rules.through_fraction)] = "a vessel runs through it"
        reasons[self.mean_probability < rules.min_confidence] = "mean probability below min_confidence"
        reasons[self.slices < rules.min_slices] = "fewer slices than min_slices"
        reasons[self.volume_ml < rules.min_volume_ml] = "smaller than min_volume_ml"
        return reasons

    def lesion_labels(self, probability: Image, kept: np.ndarray, threshold: float) -> Image:
        """The kept components (bool ``(n,)``) as lesions 1..m by decreasing volume (see :func:`label_lesions`)."""
        index = np.flatnonzero(kept)
        order = index[np.argsort(-self.volume_ml[index], kind="stable")]
        relabel = np.zeros(len(self) + 1, np.min_scalar_type(max(len(order), 1)))
        relabel[order + 1] = np.arange(1, len(order) + 1)
        return probability.with_array(relabel[self.labels], lesions=len(order), threshold=float(threshold))


def _on_grid(probability: Image, mask: Image, what: str) -> np.ndarray:
    if not probability.same_grid(mask):
        raise GeometryError(
            f"the {what} (size {mask.size}, spacing {mask.spacing}) is not on the probability "
            f"grid (size {probability.size}, spacing {probability.spacing}): resample it first"
        )
    return mask.array != 0


def find_components(
    probability: Image,
    threshold: float = DEFAULT_THRESHOLD,
    search_mask: Image | None = None,
    lungs: Image | None = None,
    ct: Image | None = None,
) -> Components:
    """Threshold ``probability`` inside ``search_mask`` and split it into 3D components (see :func:`label_lesions`).

    ``lungs`` (the tight lung mask, non-zero inside) gives each component's ``lung_fraction``;
    ``ct`` (HU) lets the vessel and dome tests run.

    Raises
    ------
    GeometryError
        When ``search_mask``, ``lungs`` or ``ct`` is not on the probability grid.
    """
    if ct is not None and not probability.same_grid(ct):
        raise GeometryError("the CT is not on the probability grid")
    tumour = probability.array >= threshold
    if search_mask is not None:
        tumour &= _on_grid(probability, search_mask, "search mask")
    components, count = ndimage.label(tumour, structure=FULL_CONNECTIVITY)
    # Sums over the tumour voxels alone: weights over the whole volume would be float64 copies of
    # it (0.3 GB each on a 512 x 512 x 150 CT), the pipeline's peak memory.
    which = components[tumour]
    voxels = np.bincount(which, minlength=count + 1)[1:]
    summed = np.bincount(which, weights=probability.array[tumour], minlength=count + 1)[1:]
    # A 26-connected component covers a contiguous run of slices: its box's k extent.
    slices = np.array([box[0].stop - box[0].start for box in ndimage.find_objects(components)], dtype=np.int64)
    inside = None
    if lungs is not None:
        in_lung = np.bincount(which, weights=_on_grid(probability, lungs, "lung mask")[tumour], minlength=count + 1)[1:]
        inside = in_lung / np.maximum(voxels, 1)
    return Components(
        components,
        voxels * probability.voxel_volume_ml,
        slices,
        summed / np.maximum(voxels, 1),
        probability.spacing,
        inside,
        ct,
    )


def label_lesions(
    probability: Image,
    threshold: float = DEFAULT_THRESHOLD,
    rules: LesionRules = LesionRules(),
    *,
    search_mask: Image | None = None,
    ct: Image | None = None,
    lungs: Image | None = None,
) -> Image:
    """Split the thresholded probability volume into lesions ordered by decreasing volume.

    Parameters
    ----------
    probability
        Tumour probability (0-1) on the CT grid, the slice predictions stacked along ``k``.
    threshold
        Voxels with ``probability >= threshold`` are tumour (the published pipeline used 0.99 on
        its sigmoid output; the right value depends on the model's calibration).
    rules
        Which components are dropped (:class:`LesionRules`; the default keeps all). Its vessel and
        dome tests (``through_fraction``, ``dome_fraction``) apply only with ``ct``, and its
        ``min_lung_fraction`` only with ``lungs``; :data:`MIN_COMPACTNESS` is the
        ``min_compactness`` bound the module documentation discusses.
    search_mask
        Where lesions may be (e.g. the lungs dilated), on the same grid; voxels outside are
        never tumour. Non-zero is inside.
    ct
        CT (HU) on the probability grid, for the vessel (:func:`through_going`) and dome
        (:func:`dome_caps`) tests.
    lungs
        The tight lung mask (non-zero inside, on the probability grid), for the lung test.

    Returns
    -------
    Image
        Label map on the probability grid: 0 background, 1 = GTV-1 (largest), 2..n the other
        components by decreasing volume (ties: the one met first in ``[k, j, i]`` order first).
        ``metadata["lesions"]`` is ``n``.

    Raises
    ------
    GeometryError
        When ``search_mask``, ``ct`` or ``lungs`` is not on the probability grid.
    """
    if ct is None:
        rules = replace(rules, through_fraction=None, dome_fraction=None)
    if lungs is None:
        rules = replace(rules, min_lung_fraction=0.0)
    found = find_components(probability, threshold, search_mask, lungs if rules.min_lung_fraction > 0 else None, ct)
    return found.lesion_labels(probability, found.dropped(rules) == "", threshold)
