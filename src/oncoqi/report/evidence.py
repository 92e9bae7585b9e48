"""GTV-1 by PET evidence: the CT lesions' SUVmax on the PET of the same study decides the primary.

A lesion the lung network finds on the CT need not be a tumour, and the largest one is not always
the primary (issue 25). When a PET of the study exists, FDG avidity is evidence that a lesion is a
tumour: :func:`oncoqi.lung.primary.order_by_evidence` doubts a lesion whose SUVmax is below
:data:`oncoqi.lung.primary.MIN_SUVMAX` and numbers the undoubted lesions first. The SUVmax comes
from :func:`oncoqi.pet.ct_lesions_on_pet` (each CT lesion carried to the PET grid nearest
neighbour, its PET-IndiC indices). Those two live on one layer and know nothing of each other, so
the glue is here, one layer up, where the cohort runner and the PETIndiC Slicer module can both use
it and give the same GTV-1, the same doubts and the same indices for the same study.

:func:`order_lesions_on_pet`
    1. the PET indices of every CT lesion (no primary yet): SUVmax by label
       (:func:`suvmax_by_label`);
    2. :func:`~oncoqi.lung.primary.order_by_evidence` with that SUVmax: the lesions renumbered,
       each with its doubts;
    3. :func:`~oncoqi.pet.ct_lesions_on_pet` again on the renumbered labels, so that the indices
       carry the new labels and the PET-thresholded lesion is sought around the new GTV-1.
:func:`describe_renumbering`
    What changed, in the words a reader needs ("GTV-1 is now the 12.0 ml lesion (formerly
    Lesion 2): the former GTV-1 (30.0 ml) is not FDG-avid (SUVmax 1.6)").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from oncoqi.image import Image
from oncoqi.lung.measure import LesionMeasurement
from oncoqi.lung.naming import lesion_name
from oncoqi.lung.primary import EvidenceRules, order_by_evidence
from oncoqi.pet.lesions import CTLesionsOnPET, ct_lesions_on_pet

#: ``primary_label`` that asks :func:`~oncoqi.pet.ct_lesions_on_pet` for no PET-thresholded lesion
#: (lesion labels are positive), while the primary is not known yet.
NO_PRIMARY = 0


@dataclass
class LesionsOnPET:
    """The CT lesions numbered with the PET's evidence, and their PET indices.

    Attributes
    ----------
    labels
        The renumbered CT label image (same grid, dtype and metadata; label 1 is GTV-1).
    lesions
        Their measurements with the new labels and their doubts, in label order.
    renumbered
        The former label of each lesion -> its new label.
    on_pet
        :func:`~oncoqi.pet.ct_lesions_on_pet` of the renumbered labels: indices by new label and
        the PET-thresholded lesion around the new GTV-1 (None when not asked to measure them).
    suvmax
        SUVmax by new label, as the evidence used it (a lesion smaller than a PET voxel on the PET
        grid has none and is not judged on it).
    """

    labels: Image
    lesions: list[LesionMeasurement]
    renumbered: dict[int, int]
    on_pet: CTLesionsOnPET | None
    suvmax: dict[int, float]


def suvmax_by_label(found: CTLesionsOnPET) -> dict[int, float]:
    """SUVmax of each lesion of :func:`~oncoqi.pet.ct_lesions_on_pet`'s result that has indices, by label."""
    return {lesion.label: float(lesion.indices.suv_max) for lesion in found.lesions if lesion.indices is not None}


def _renumbering(before: Image, after: Image) -> dict[int, int]:
    """Former label -> new label, read from the voxels (a relabelling maps every voxel of a label alike)."""
    inside = before.array != 0
    pairs = np.unique(np.column_stack((before.array[inside], after.array[inside])), axis=0)
    return {int(old): int(new) for old, new in pairs}


def order_lesions_on_pet(
    suv: Image,
    labels: Image,
    lesions: list[LesionMeasurement],
    rules: EvidenceRules | None = None,
    *,
    method: str = "background",
    value: float = 50.0,
    margin_mm: float = 10.0,
    measure: bool = True,
) -> LesionsOnPET:
    """Number the CT lesions by evidence including their SUVmax, and measure them on the PET.

    Parameters
    ----------
    suv
        The SUV volume (body weight: the FDG-avidity bound is an SUVbw) of the same study.
    labels
        The lesions' label image on the CT grid.
    lesions
        Their measurements (:func:`oncoqi.lung.measure.measure_lesions`), any numbering.
    rules
        The bounds of the doubts (:class:`~oncoqi.lung.primary.EvidenceRules`; its defaults when None).
    method, value, margin_mm
        The PET-thresholded lesion around GTV-1 (:func:`~oncoqi.pet.ct_lesions_on_pet`).
    measure
        Measure the renumbered lesions on the PET (``on_pet``); False when the caller does it
        itself later (``oncoqi batch``'s PET part), which saves a second pass over the PET.

    Returns
    -------
    LesionsOnPET
    """
    first = ct_lesions_on_pet(suv, labels, [lesion.label for lesion in lesions], primary_label=NO_PRIMARY)
    former_suvmax = suvmax_by_label(first)
    relabelled, ordered = order_by_evidence(labels, lesions, rules or EvidenceRules(), suvmax=former_suvmax)
    renumbered = _renumbering(labels, relabelled)
    primary = ordered[0].centroid_lps_mm if ordered else None
    suvmax = {renumbered[old]: value for old, value in former_suvmax.items()}
    if not measure:
        return LesionsOnPET(relabelled, ordered, renumbered, None, suvmax)
    on_pet = ct_lesions_on_pet(
        suv,
        relabelled,
        [lesion.label for lesion in ordered],
        primary_label=1,
        primary_centroid_lps=primary,
        method=method,
        value=value,
        margin_mm=margin_mm,
    )
    return LesionsOnPET(relabelled, ordered, renumbered, on_pet, suvmax)


def describe_renumbering(found: LesionsOnPET, former_names: Mapping[int, str] | None = None) -> list[str]:
    """Sentences saying what the evidence changed; empty when every lesion keeps its name.

    Parameters
    ----------
    found
        From :func:`order_lesions_on_pet`.
    former_names
        The name each lesion had, by former label (e.g. the Slicer segment names); by default
        :func:`~oncoqi.lung.naming.lesion_name` of the former label.

    Returns
    -------
    list[str]
        Why GTV-1 changed, when it did; that GTV-1 is doubted, when every lesion is; and the
        renamed lesions (``former -> new``).
    """
    if not found.lesions:
        return []
    former = {old: lesion_name(old) for old in found.renumbered}
    former.update(former_names or {})
    new_to_old = {new: old for old, new in found.renumbered.items()}
    by_label = {lesion.label: lesion for lesion in found.lesions}
    gtv1 = by_label[1]
    lines = []
    if new_to_old[1] != 1 and 1 in found.renumbered:
        previous = by_label[found.renumbered[1]]
        who = "the former GTV-1" if former[1] == lesion_name(1) else f"'{former[1]}', the former first lesion"
        why = "; ".join(previous.doubts) if previous.doubts and not gtv1.doubts else "smaller"
        lines.append(
            f"GTV-1 is now the {gtv1.volume_ml:.1f} ml lesion (formerly {former[new_to_old[1]]}): "
            f"{who} ({previous.volume_ml:.1f} ml) is {why}."
        )
    if gtv1.doubts:
        lines.append(f"Every lesion is doubted, so GTV-1 is the largest: {'; '.join(gtv1.doubts)}.")
    renamed = [
        f"{former[old]} -> {lesion_name(new)}"
        for new, old in sorted(new_to_old.items())
        if former[old] != lesion_name(new)
    ]
    if renamed:
        lines.append(f"Renamed: {', '.join(renamed)}.")
    return lines
