"""Find the lungs in a chest CT: a tight lung mask, and a wider region to search for tumours in.

:func:`isolate_lungs` returns two lung outputs that serve different purposes:

``lungs`` (tight)
    The aerated lungs, 1 right and 2 left: voxels below -400 HU inside the body, in the
    large air-filled regions that are lung-like, with the vessels, airways and nodules that lie
    inside a lung filled in slice by slice (as an expert's lung contour includes them). The
    mediastinum, the trachea and main bronchi, and tumour or collapsed lung that is not enclosed
    by aerated lung are not part of it. This is what is compared with expert lung contours.
``search_region``
    Where a tumour may be: the tight lungs united with their mirror image about the sagittal
    plane through the spine (so that a lung made airless by a tumour or atelectasis gets the
    footprint of its healthy partner); on a slice where one side has less than half the aerated
    lung of its partner's mirror image, that side gets the mirror image's convex hull (the heart
    makes the left lung narrower than the right, so the mirror alone misses the medial part of a
    collapsed right lung); then closed over 10 mm gaps and notches per slice, holes filled on each
    side of the spine, dilated by 5 mm in 3D and kept inside the body. The mirror, hull, closing
    and filling work on pixels of about 2.5 mm; the 5 mm margin is exact.

Steps (all in millimetres, so any pixel size and slice thickness work; the CT's own grid is kept):

1. **Orientation**: the array is viewed (transposed or flipped, never resampled) with columns
   running towards the patient's left and rows towards the back.
2. **Body and couch**: voxels above -400 HU are dense; a per-slice opening of 5 mm (on pixels of
   about 2.5 mm) breaks the thin shells of the CT couch away from the patient; the largest 3D
   component is the body, outlined at full resolution within the dense voxels and filled slice
   by slice. Dense voxels outside it are the couch (and anything else outside the patient).
3. **Air inside the body**: voxels at or below -400 HU enclosed by the body in their slice;
   -400 HU is about half-way between aerated lung (-850) and soft tissue (+40), so the boundary
   falls where a voxel is half lung.
4. **Airways and small air**: per slice, air pieces smaller than 6 cm^2 are removed; the lumen of
   the trachea (at most about 5 cm^2 in adults) and of the main bronchi are such pieces, which
   cuts them from the lungs.
5. **Lung regions** (region growing as 3D connected components): a component is lung-like
   when most of its voxels are above -980 HU (lung parenchyma is tissue and air, about
   -850 HU; gas in the stomach, bowel or sinuses reads -1000 HU). The largest lung-like component
   is a lung (at least 25 ml is needed); others are kept when they hold at least 2 % of its volume
   and their centre lies within its slice range (the other lung, a lung base cut off by thick
   slices, or a lobe cut off by a tumour).
6. **Join and fill**: a 3 mm closing per slice joins pieces split by vessels and fills notches;
   holes are filled per slice on each side of the spine separately, so the mediastinum is never
   taken as a hole between the two lungs.
7. **Spine axis**: per slice, the bone (above 200 HU) in the posterior half of the body within
   the central half of its width; the column profile's peak is refined to the bone's centroid
   within 20 mm; slices without a clear spine are interpolated, and the axis is smoothed along z
   with a forward-backward exponential filter (20 mm). Without any spine, the body's centre is used.

Works on CT that cuts the lungs (any slice range) and on whole-body CT (gas in the abdomen or
head is not lung-like or not in the lungs' slice range). A lung that touches the image border
in-plane (field of view narrower than the chest) is not enclosed by the body there and is lost
in those slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from oncoqi.errors import OncoQIError
from oncoqi.image import Image
from oncoqi.lung import morphology as morph
from oncoqi.lung.ct import check_axial, check_ct
from oncoqi.lung.orientation import CanonicalView
from oncoqi.metrics.lesions import LEFT_LUNG, RIGHT_LUNG  # the values of the lung label map written here

#: Voxels above this are dense (tissue, bone, couch); at or below, air or aerated lung.
AIR_HU = -400.0
#: Bone, for the spine axis.
BONE_HU = 200.0
#: A lung-like region has most of its voxels above this (pure gas reads -1000 HU).
GAS_HU = -980.0
#: Radius of the per-slice opening that separates the couch shells from the patient.
COUCH_OPENING_MM = 5.0
#: Pixel size of the coarse steps (finding the body, closing the search region).
COARSE_PIXEL_MM = 2.5
#: Per slice, air pieces smaller than this are airways or noise, not lung.
MIN_PIECE_MM2 = 600.0
#: Smallest lung-like region considered at all, and smallest largest lung.
MIN_COMPONENT_ML = 1.0
MIN_LUNG_ML = 25.0
#: A further lung-like region is kept when it has this fraction of the largest one's volume (the
#: largest often holds both lungs, joined by the airways, so a lung base cut off by thick slices or
#: a lobe cut off by a tumour can be small beside it; gas is excluded by its CT number anyway).
MIN_RELATIVE_VOLUME = 0.02
#: Per-slice closing that joins lung pieces and fills notches of the tight mask.
JOIN_MM = 3.0
#: A side of a slice whose aerated lung is less than this fraction of its partner's mirror image
#: is taken as collapsed there: the mirror image's convex hull is searched.
COLLAPSED_FRACTION = 0.5
#: Per-slice closing of the search region, and its final 3D margin.
SEARCH_CLOSING_MM = 10.0
SEARCH_MARGIN_MM = 5.0
#: Spine detection: least bone area in the search band, half-width of the refinement window,
#: and the z length of the exponential smoothing.
MIN_SPINE_BONE_MM2 = 100.0
SPINE_HALF_WIDTH_MM = 20.0
SPINE_SMOOTHING_MM = 20.0


class LungNotFoundError(OncoQIError):
    """No lungs were found in the CT (no body, no air inside it, or no lung-like air region)."""


@dataclass
class LungMasks:
    """What :func:`isolate_lungs` found, every mask on the CT's own grid.

    Attributes
    ----------
    lungs
        Tight lung mask, uint8: 0 outside, 1 right lung, 2 left lung (holes filled).
    search_region
        uint8 0/1: the region to search for tumours (the lungs and their mirror image, the mirror's
        convex hull on collapsed sides, closed, filled, dilated by 5 mm, within the body).
    body
        uint8 0/1: the patient's body without the couch, its air-filled holes (lungs) included.
    couch
        uint8 0/1: the dense voxels (above -400 HU) outside the body: the CT couch and anything else
        that is not the patient. ``body`` is the couch-free mask.
    spine_lps
        ``(slices, 3)``: the smoothed spine axis, the LPS point (mm) of the spine's centre on each
        slice; the mirror plane of each slice is the sagittal plane through it.
    spine_detected
        ``(slices,)`` bool: slices where bone gave the centre (elsewhere it is interpolated).
    """

    lungs: Image
    search_region: Image
    body: Image
    couch: Image
    spine_lps: np.ndarray
    spine_detected: np.ndarray

    @property
    def volume_ml(self) -> dict[str, float]:
        """Tight lung volumes: ``right``, ``left`` and ``total`` (ml)."""
        counts = np.bincount(self.lungs.array.ravel(), minlength=3)
        right, left = (float(counts[value]) * self.lungs.voxel_volume_ml for value in (RIGHT_LUNG, LEFT_LUNG))
        return {"right": right, "left": left, "total": right + left}

    @property
    def lung_slices(self) -> tuple[int, int]:
        """First and last slice index ``k`` holding tight lung."""
        k = np.flatnonzero(self.lungs.array.any(axis=(1, 2)))
        return int(k[0]), int(k[-1])


def isolate_lungs(ct: Image, name: str | None = None) -> LungMasks:
    """Find the lungs, the body, the couch and the spine axis of an axial chest CT.

    Parameters
    ----------
    ct
        CT in Hounsfield units on any grid with axial slices (thorax, whole body, or a slab that
        cuts the lungs).
    name
        How to name the CT in messages.

    Returns
    -------
    LungMasks
        All masks on the CT's grid (see the module documentation for what each one is).

    Raises
    ------
    oncoqi.lung.ct.NotCTError, oncoqi.lung.ct.EmptyVolumeError
        When ``ct`` is not a CT in HU, or is empty.
    oncoqi.errors.GeometryError
        When the slices are not axial.
    LungNotFoundError
        When no body, or no lung-like air region of at least 25 ml, is found.
    """
    check_ct(ct, name)
    check_axial(ct, name)
    label = name or "the CT"
    orient = CanonicalView.of(ct.direction)
    hu = orient.to_canonical(ct.array)
    spacing = orient.spacing(ct.spacing)
    voxel_ml = ct.voxel_volume_ml

    dense = hu > AIR_HU
    body_full = _body(dense, spacing)
    if not body_full.any():
        raise LungNotFoundError(f"{label}: no body found (no tissue above {AIR_HU:g} HU survives couch removal)")
    box = _in_plane_box(body_full)
    hu_b, dense_b, body = hu[box], dense[box], body_full[box]
    body_filled = morph.fill_holes_per_slice(body)
    air = body_filled & ~dense_b
    air = morph.remove_small_pieces_per_slice(air, MIN_PIECE_MM2, spacing[1] * spacing[2])
    lung_air = _select_lungs(air, hu_b, voxel_ml, label)

    spine_col, spine_row, detected = _spine_axis(hu_b, body_filled, spacing)
    right = np.broadcast_to(np.arange(hu_b.shape[2])[None, None, :] < spine_col[:, None, None], hu_b.shape)
    tight = morph.close(lung_air, JOIN_MM, spacing, per_slice=True)
    tight = _fill_per_side(tight, right)
    search = _search_region(tight, spine_col, spacing) & body_filled

    def full(mask_b: np.ndarray) -> np.ndarray:
        out = np.zeros(hu.shape, dtype=np.uint8)
        out[box] = mask_b
        return out

    body_c = full(body_filled)
    couch = (dense & (body_c == 0)).astype(np.uint8)
    rows = spine_row + box[1].start
    cols = spine_col + box[2].start
    index = orient.to_index(np.arange(hu.shape[0], dtype=float), rows, cols, hu.shape)
    return LungMasks(
        lungs=ct.with_array(orient.from_canonical(full(_sides(tight, right))), description="lungs: 1 right, 2 left"),
        search_region=ct.with_array(orient.from_canonical(full(search)), description="lung tumour search region"),
        body=ct.with_array(orient.from_canonical(body_c), description="body without couch, lungs included"),
        couch=ct.with_array(orient.from_canonical(couch), description="dense voxels outside the body (couch)"),
        spine_lps=ct.index_to_lps(index),
        spine_detected=detected,
    )


def _body(dense: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """The patient: the largest dense component once the thin couch shells are opened away.

    The opening and the component search run on coarse pixels (:func:`_coarse`), enough to
    tell a couch shell from a body; the body's outline then comes from ``dense`` at full
    resolution, within 1.5 coarse pixels of the opened body (which makes up for the subsampling
    but does not reach into a couch lying against the back).
    """
    coarse, step, coarse_spacing = _coarse(dense, spacing)
    core = morph.largest_component(morph.open_(coarse, COUCH_OPENING_MM, coarse_spacing, per_slice=True))
    near = morph.dilate(core, 1.5 * max(coarse_spacing[1], coarse_spacing[2]), coarse_spacing, per_slice=True)
    return dense & _fine(near, step, dense.shape)


def _coarse(
    mask: np.ndarray, spacing: tuple[float, float, float]
) -> tuple[np.ndarray, int, tuple[float, float, float]]:
    """``mask`` subsampled in-plane (nearest neighbour) to pixels of about ``COARSE_PIXEL_MM``.

    Returns the coarse mask, the subsampling step and the coarse spacing. Coarse pixel ``(r, c)``
    is fine pixel ``(r * step, c * step)``.
    """
    step = max(1, int(COARSE_PIXEL_MM // min(spacing[1], spacing[2])))
    return mask[:, ::step, ::step], step, (spacing[0], spacing[1] * step, spacing[2] * step)


def _fine(coarse: np.ndarray, step: int, shape: tuple[int, ...]) -> np.ndarray:
    """Back from :func:`_coarse`: every coarse pixel covers its ``step`` x ``step`` block."""
    return np.repeat(np.repeat(coarse, step, axis=1), step, axis=2)[:, : shape[1], : shape[2]]


def _search_region(tight: np.ndarray, spine_col: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Where to search for tumours (see the module documentation).

    The mirror, hull, closing and filling run on coarse pixels, as this is only a region to
    search in; the final 5 mm margin is exact, in 3D, at full resolution.
    """
    coarse, step, coarse_spacing = _coarse(tight, spacing)
    centre = spine_col / step
    right = np.broadcast_to(np.arange(coarse.shape[2])[None, None, :] < centre[:, None, None], coarse.shape)
    mirrored = _mirror(coarse, centre)
    core = coarse | mirrored
    for side in (right, ~right):
        own = (coarse & side).sum(axis=(1, 2))
        partner = mirrored & side
        for k in np.flatnonzero(own < COLLAPSED_FRACTION * partner.sum(axis=(1, 2))):
            core[k] |= convex_hull_image(partner[k])
    core = _fill_per_side(morph.close(core, SEARCH_CLOSING_MM, coarse_spacing, per_slice=True), right)
    return morph.dilate(tight | _fine(core, step, tight.shape), SEARCH_MARGIN_MM, spacing, per_slice=False)


def _in_plane_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """All slices, and the in-plane bounding box of ``mask`` with a one-pixel frame of background."""
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    _, ny, nx = mask.shape
    return (
        slice(0, mask.shape[0]),
        slice(max(rows[0] - 1, 0), min(rows[-1] + 2, ny)),
        slice(max(cols[0] - 1, 0), min(cols[-1] + 2, nx)),
    )


def _select_lungs(air: np.ndarray, hu: np.ndarray, voxel_ml: float, label: str) -> np.ndarray:
    """The lung-like 3D air components (see the module documentation, step 5)."""
    components, n = ndimage.label(air)
    if n == 0:
        raise LungNotFoundError(
            f"{label}: no lungs found: no air-filled region inside the body of {MIN_PIECE_MM2 / 100:g} cm^2 or more "
            "on any slice"
        )
    volume = np.bincount(components.ravel(), minlength=n + 1) * voxel_ml
    gas = np.bincount(components.ravel(), weights=(hu < GAS_HU).ravel(), minlength=n + 1) * voxel_ml
    volume[0] = 0.0
    lung_like = (volume >= MIN_COMPONENT_ML) & (gas < 0.5 * volume)
    if not lung_like.any() or volume[lung_like].max() < MIN_LUNG_ML:
        largest = int(np.argmax(volume))
        what = "gas, not lung" if not lung_like[largest] else "too small for a lung"
        raise LungNotFoundError(
            f"{label}: no lungs found: the largest air-filled region inside the body is {volume[largest]:.1f} ml "
            f"({what}); at least {MIN_LUNG_ML:g} ml of aerated lung is needed"
        )
    largest = int(np.argmax(np.where(lung_like, volume, 0.0)))
    boxes = ndimage.find_objects(components)
    first, last = boxes[largest - 1][0].start, boxes[largest - 1][0].stop - 1
    keep = np.zeros(n + 1, dtype=bool)
    for c in np.flatnonzero(lung_like & (volume >= MIN_RELATIVE_VOLUME * volume[largest])):
        z = boxes[c - 1][0]
        keep[c] = first <= (z.start + z.stop - 1) / 2.0 <= last
    return keep[components]


def _spine_axis(
    hu: np.ndarray, body: np.ndarray, spacing: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per slice, the spine's centre as canonical (column, row), and where bone gave it."""
    nk, ny, nx = hu.shape
    sk, sy, sx = spacing
    rows, cols = np.arange(ny, dtype=float), np.arange(nx, dtype=float)
    area = body.sum(axis=(1, 2)).astype(float)
    has_body = area > 0
    safe = np.where(has_body, area, 1.0)
    row_c = (body.sum(axis=2) @ rows) / safe
    col_c = (body.sum(axis=1) @ cols) / safe
    in_cols = body.any(axis=1)
    width = np.where(has_body, nx - np.argmax(in_cols[:, ::-1], axis=1) - np.argmax(in_cols, axis=1), 0)
    bone = (hu > BONE_HU) & body & (rows[None, :, None] > row_c[:, None, None])
    profile = bone.sum(axis=1).astype(float)  # (nk, nx): posterior bone pixels per column
    profile[np.abs(cols[None, :] - col_c[:, None]) > 0.25 * width[:, None]] = 0.0
    smooth = ndimage.uniform_filter1d(profile, size=max(1, int(round(10.0 / sx))), axis=1)
    peak = np.argmax(smooth, axis=1)
    detected = has_body & (profile.sum(axis=1) * sx * sy >= MIN_SPINE_BONE_MM2)
    col = np.full(nk, np.nan)
    row = np.full(nk, np.nan)
    half = SPINE_HALF_WIDTH_MM / sx
    for k in np.flatnonzero(detected):
        near = np.abs(cols - peak[k]) <= half
        weights = profile[k] * near
        bone_rows = np.nonzero(bone[k][:, near])[0]
        if bone_rows.size == 0:
            detected[k] = False
            continue
        col[k] = float(weights @ cols) / float(weights.sum())
        row[k] = float(bone_rows.mean())
    if not detected.any():  # no spine visible: fall back on the body's centre
        col, row = np.where(has_body, col_c, np.nan), np.where(has_body, row_c, np.nan)
    alpha = 1.0 - np.exp(-sk / SPINE_SMOOTHING_MM)
    return _smooth(_interpolate(col), alpha), _smooth(_interpolate(row), alpha), detected


def _interpolate(values: np.ndarray) -> np.ndarray:
    """Fill NaNs linearly from the valid neighbours (constant beyond the ends)."""
    valid = np.isfinite(values)
    k = np.arange(values.size)
    return np.interp(k, k[valid], values[valid])


def _smooth(values: np.ndarray, alpha: float) -> np.ndarray:
    """Forward-backward exponential smoothing (no lag)."""
    out = values.astype(float).copy()
    for k in range(1, out.size):
        out[k] = alpha * out[k] + (1.0 - alpha) * out[k - 1]
    for k in range(out.size - 2, -1, -1):
        out[k] = alpha * out[k] + (1.0 - alpha) * out[k + 1]
    return out


def _mirror(mask: np.ndarray, centre_col: np.ndarray) -> np.ndarray:
    """``mask`` reflected, slice by slice, about the column ``centre_col[k]``."""
    out = np.zeros_like(mask)
    nx = mask.shape[2]
    for k in range(mask.shape[0]):
        source = np.rint(2.0 * centre_col[k] - np.arange(nx)).astype(int)
        inside = (source >= 0) & (source < nx)
        out[k][:, inside] = mask[k][:, source[inside]]
    return out


def _fill_per_side(mask: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Fill holes per slice in the right and the left half separately (never the mediastinum)."""
    return mask | morph.fill_holes_per_slice(mask & right) | morph.fill_holes_per_slice(mask & ~right)


def _sides(tight: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Label 1 (right) or 2 (left): a component lying mostly on one side goes wholly to it; one
    that straddles the spine (lungs joined at a junction line) is split at the sagittal plane."""
    components, n = ndimage.label(tight)
    total = np.bincount(components.ravel(), minlength=n + 1).astype(float)
    on_right = np.bincount(components[right], minlength=n + 1) / np.maximum(total, 1.0)
    whole = np.zeros(n + 1, dtype=np.uint8)
    whole[on_right >= 0.8] = RIGHT_LUNG
    whole[on_right <= 0.2] = LEFT_LUNG
    whole[0] = 0
    out = whole[components]
    split = tight & (out == 0)
    out[split] = np.where(right, RIGHT_LUNG, LEFT_LUNG)[split]
    return out
