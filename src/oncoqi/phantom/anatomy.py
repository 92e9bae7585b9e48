"""The analytic thorax: a tissue class for any point in patient space.

The model is a set of shapes in LPS millimetres (x to the patient's left, y posterior, z
superior), evaluated slice by slice on any axis-aligned :class:`~oncoqi.phantom.grid.Grid`, so
that the CT grid and the finer PET sampling grid see exactly the same anatomy:

* the body is a superellipse (rounder in front, flatter at the back, where it rests on a
  curved CT couch with dense shells and a foam core); its depth below the skin defines
  subcutaneous fat, muscle (thicker at the back: paraspinal muscles) and a rib layer with
  obliquely running ribs (cortex and marrow), costal cartilage in front and the sternum;
* inside the rib layer lies the thoracic cavity: the lungs fill it between a dome-shaped
  apex and the two diaphragm domes (liver under the right, spleen/stomach under the left, with
  an optional gastric air bubble); the mediastinum (fat band, heart with myocardium and blood
  pool, left atrium, aorta with the branches of its arch, superior vena cava, brachiocephalic and azygos
  veins, pulmonary arteries, oesophagus, hila, trachea and main bronchi) and the spine
  (vertebral bodies with discs, canal, lamina, spinous and transverse processes, paravertebral
  muscle) take their share of it;
* the clutter of :mod:`oncoqi.phantom.clutter` (lymph nodes in the mediastinal and
  subcutaneous fat, scapulae, an intermuscular fat plane, the prevascular space with its
  strands, pericardial fat pads) makes the hard negatives around the lungs; its dependent
  density is added to the lungs' CT numbers by :mod:`oncoqi.phantom.render`.

The pulmonary vessel and bronchial trees are not part of this map; they are rasterised onto
the CT grid by :mod:`oncoqi.phantom.vessels`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from oncoqi.phantom.clutter import (
    AnteriorMediastinum,
    Blob,
    ChestWall,
    DependentDensity,
    chest_wall_nodes,
    mediastinal_nodes,
    pericardial_fat_pads,
)
from oncoqi.phantom.grid import Grid, slice_window
from oncoqi.phantom.tissues import Tissue as T

#: Semi-axes (x, y, z) in mm of the soft tissue around each hilum.
HILA_SEMI_AXES = (11.0, 12.0, 18.0)


@dataclass(frozen=True)
class Tube:
    """A polyline tube painted with ``tissue`` (lumen) inside an optional ``wall`` class."""

    points: tuple[tuple[float, float, float], ...]
    radius: float
    tissue: T
    wall: float = 0.0
    wall_tissue: T = T.MEDIASTINAL_SOFT


@dataclass(frozen=True)
class Anatomy:
    """Parameters of one thorax; draw them with :meth:`draw`. All lengths in mm."""

    # body outline and layers
    body_a: float
    body_b: float
    body_yc: float
    fat: float
    fat_ant: float
    muscle: float
    muscle_post: float
    muscle_ant: float
    rib_layer: float
    # ribs and sternum
    rib_period: float
    rib_height: float
    rib_phase: float
    rib_tilt: float
    sternum_half_width: float
    sternum_top: float
    sternum_bottom: float
    # spine
    vertebra_radius: float
    vertebra_y: float
    vertebra_period: float
    vertebra_phase: float
    # lungs, diaphragm
    x_mid: float
    apex_z: float
    apex_dx: float
    apex_y: float
    apex_radius: float
    dome_right: float
    dome_left: float
    dome_dx: float
    dome_y: float
    dome_radius: float
    gastric_bubble: bool
    # mediastinum and heart
    band_half_width: float
    heart_centre: tuple[float, float, float]
    heart_axes: tuple[float, float, float]
    heart_angle: float
    heart_wall: float
    trachea_y: float
    carina_z: float
    hilum_right: tuple[float, float, float]
    hilum_left: tuple[float, float, float]
    #: Right and left ends of the left atrium, where the pulmonary veins enter.
    atrium: tuple[tuple[float, float, float], tuple[float, float, float]]
    couch_gap: float
    blobs: tuple[Blob, ...]
    chest_wall: ChestWall
    anterior: AnteriorMediastinum
    dependent: DependentDensity
    tubes: tuple[Tube, ...] = field(default=())

    @classmethod
    def draw(cls, rng: np.random.Generator, scale: float) -> Anatomy:
        """Random but plausible anatomy; ``scale`` (about 0.85-1.15) sets the body size.

        Every random number is drawn in a fixed order, so one generator state gives one
        anatomy; the clutter of :mod:`oncoqi.phantom.clutter` is drawn last, so adding it kept
        every earlier parameter.
        """
        layers = _Layers.draw(rng, scale)
        marks = _Landmarks.draw(rng, scale, layers)
        fields = {**asdict(layers), **marks.anatomy_fields(), **_draw_details(rng, scale, layers, marks)}
        clutter = _draw_clutter(rng, layers, marks, fields["band_half_width"], fields["dome_left"])
        return cls(**fields, tubes=marks.tubes(scale, layers.body_yc), **clutter)

    @property
    def lung_z_range(self) -> tuple[float, float]:
        """Lowest (posterior costophrenic recess, approximately) and highest lung z (mm)."""
        return (_lung_bottom(self.dome_right, self.dome_left), self.apex_z)

    @property
    def back_y(self) -> float:
        """y of the patient's back at the midline (mm)."""
        return self.body_yc + self.body_b

    def labels(self, grid: Grid) -> np.ndarray:
        """Tissue class (uint8, :class:`~oncoqi.phantom.tissues.Tissue`) at every voxel centre."""
        x, y, z = grid.axes()
        X, Y = np.meshgrid(x, y)
        out = np.empty(grid.shape, dtype=np.uint8)
        for k, zk in enumerate(z):
            out[k] = self._slice(X, Y, float(zk), x, y)
        return out

    # -- one axial slice -------------------------------------------------------------------

    def _body_axes(self, z: float) -> tuple[float, float]:
        """Body half-width and half-depth at height z (narrower towards the neck)."""
        t = np.clip((z - (self.apex_z - 30.0)) / 90.0, 0.0, 1.0)
        taper = 1.0 - 0.12 * t * t * (3 - 2 * t)
        return self.body_a * taper, self.body_b * (1.0 - 0.4 * (1.0 - taper))

    def _slice(self, X: np.ndarray, Y: np.ndarray, z: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        lab = np.zeros(X.shape, dtype=np.uint8)
        self._couch(lab, X, Y)
        a, b = self._body_axes(z)
        dy = Y - self.body_yc
        u, v = np.abs(X / a), np.abs(dy / b)
        p = np.where(dy < 0, 2.2, 3.2)
        rho = (u**p + v**p) ** (1.0 / p)
        body = rho <= 1.0
        r = np.hypot(X, dy)
        depth = r * (1.0 - rho) / np.maximum(rho, 1e-6)
        sin = dy / np.maximum(r, 1e-6)  # +1 straight back, -1 straight front
        post, ant = np.clip(sin, 0, None), np.clip(-sin, 0, None)
        d_fat = self.fat + self.fat_ant * ant**2
        d_mus = d_fat + self.muscle + self.muscle_post * post**4 + self.muscle_ant * ant**2
        d_cav = d_mus + self.rib_layer
        lab[body] = T.FAT
        lab[body & (depth >= d_fat)] = T.MUSCLE
        ring = body & (depth >= d_mus) & (depth < d_cav)
        cavity = body & (depth >= d_cav)
        self.chest_wall.paint(lab, body, depth, sin, X, z, d_fat, d_mus)
        q = (depth - d_mus) / self.rib_layer  # 0..1 across the rib layer
        self._ribs(lab, ring, q, sin, X, z)
        self._sternum(lab, ring, q, sin, X, z)
        self._cavity(lab, cavity, X, Y, z, x, y)
        self._spine(lab, body, cavity, X, Y, z)
        for blob in self.blobs:
            blob.paint(lab, x, y, z)
        return lab

    def _couch(self, lab: np.ndarray, X: np.ndarray, Y: np.ndarray) -> None:
        top = self.back_y + self.couch_gap - X**2 / (2 * 1500.0)
        depth = Y - top
        wide = np.abs(X) < 220.0
        lab[wide & (depth >= 0) & (depth < 38.0)] = T.COUCH_SHELL
        lab[wide & (depth >= 3.0) & (depth < 35.0)] = T.COUCH_CORE

    def _ribs(self, lab: np.ndarray, ring: np.ndarray, q: np.ndarray, sin: np.ndarray, X: np.ndarray, z: float) -> None:
        phase = (z - self.rib_phase + self.rib_tilt * (1.0 - sin)) / self.rib_period
        frac = (phase - np.floor(phase)) * self.rib_period / self.rib_height  # < 1 inside a rib
        rib = ring & (frac < 1.0) & ~((sin > 0) & (np.abs(X) < 1.6 * self.vertebra_radius))
        cartilage = sin < -0.82
        lab[rib & cartilage] = T.CARTILAGE
        bone = rib & ~cartilage
        lab[bone] = T.BONE
        lab[bone & (q > 0.28) & (q < 0.72) & (frac > 0.25) & (frac < 0.75)] = T.MARROW

    def _sternum(
        self, lab: np.ndarray, ring: np.ndarray, q: np.ndarray, sin: np.ndarray, X: np.ndarray, z: float
    ) -> None:
        if not self.sternum_bottom <= z <= self.sternum_top:
            return
        w = self.sternum_half_width
        st = ring & (sin < 0) & (np.abs(X) < w)
        lab[st] = T.BONE
        lab[st & (q > 0.25) & (q < 0.75) & (np.abs(X) < w - 3.0)] = T.MARROW

    def _cavity(
        self, lab: np.ndarray, cavity: np.ndarray, X: np.ndarray, Y: np.ndarray, z: float, x: np.ndarray, y: np.ndarray
    ) -> None:
        lab[cavity] = T.LUNG
        lateral = np.abs(X - self.x_mid)
        left = X > self.x_mid
        top = self.apex_z - ((lateral - self.apex_dx) ** 2 + (Y - self.apex_y) ** 2) / (2 * self.apex_radius)
        dome = np.where(left, self.dome_left, self.dome_right)
        diaphragm = dome - ((lateral - self.dome_dx) ** 2 + (Y - self.dome_y) ** 2) / (2 * self.dome_radius)
        lab[cavity & (z > top)] = T.MUSCLE
        below = cavity & (z < diaphragm)
        lab[below & ~left] = T.LIVER
        lab[below & left] = T.SPLEEN
        if self.gastric_bubble:
            bubble = (
                ((X - self.x_mid - 0.9 * self.dome_dx) / 30.0) ** 2
                + ((Y - self.dome_y) / 22.0) ** 2
                + ((z - self.dome_left + 40.0) / 15.0) ** 2
            ) <= 1.0
            lab[below & bubble] = T.STOMACH_GAS
        lung = lab == T.LUNG
        mid_diaphragm = min(self.dome_left, self.dome_right) - 30.0
        if mid_diaphragm <= z <= self.apex_z + 20.0:
            band = cavity & (lateral < self.band_half_width) & (Y < self.vertebra_y) & (z >= diaphragm)
            lab[band] = T.MEDIASTINAL_FAT
        self.anterior.paint(lab, cavity, lung, X, Y, z, lateral)
        # hilar soft tissue around the arteries and bronchi: small, as on real CT, where the hilum
        # is mostly vessels; a 4-6 cm soft-tissue ball here (as this phantom once had) teaches a
        # network that a perihilar mass is normal anatomy
        for hilum in (self.hilum_right, self.hilum_left):
            e = sum(((c - h) / r) ** 2 for c, h, r in zip((X, Y, z), hilum, HILA_SEMI_AXES))
            lab[cavity & (e <= 1.0)] = T.MEDIASTINAL_SOFT
        self._heart(lab, cavity, X, Y, z)
        for tube in self.tubes:
            _paint_tube(lab, cavity, tube, X, Y, z, x, y)

    def _heart(self, lab: np.ndarray, cavity: np.ndarray, X: np.ndarray, Y: np.ndarray, z: float) -> None:
        (xc, yc, zc), (ah, bh, ch) = self.heart_centre, self.heart_axes
        fat = 4.0
        dz = (z - zc) / (ch + fat)
        if abs(dz) >= 1.0:
            return
        c, s = np.cos(self.heart_angle), np.sin(self.heart_angle)
        xr = c * (X - xc) + s * (Y - yc)
        yr = -s * (X - xc) + c * (Y - yc)

        def inside(grow: float) -> np.ndarray:
            return (xr / (ah + grow)) ** 2 + (yr / (bh + grow)) ** 2 + ((z - zc) / (ch + grow)) ** 2 <= 1.0

        lab[cavity & inside(fat)] = T.MEDIASTINAL_FAT
        lab[cavity & inside(0.0)] = T.MYOCARDIUM
        lab[cavity & inside(-self.heart_wall)] = T.BLOOD

    def _spine(
        self, lab: np.ndarray, body: np.ndarray, cavity: np.ndarray, X: np.ndarray, Y: np.ndarray, z: float
    ) -> None:
        rv, yv = self.vertebra_radius, self.vertebra_y
        phase = (z - self.vertebra_phase) / self.vertebra_period
        frac = phase - np.floor(phase)
        disc = frac < 5.0 / self.vertebra_period
        e = np.hypot(X / 1.12, Y - yv) / rv  # 1 on the vertebral body surface
        lab[cavity & (e <= 1.0 + 7.0 / rv) & (lab == T.LUNG)] = T.MUSCLE  # paravertebral soft tissue
        vb = body & (e <= 1.0)
        if disc:
            lab[vb] = T.CARTILAGE
        else:
            lab[vb] = T.BONE
            lab[vb & (e < 1.0 - 3.0 / rv)] = T.MARROW
        yc = yv + rv + 9.0  # spinal canal centre
        rc = 8.0
        dc = np.hypot(X, Y - yc)
        arch_phase = frac > 0.25
        lab[body & (dc < rc + 5.0)] = T.BONE
        lab[body & (dc < rc)] = T.SPINAL_CANAL
        if arch_phase:
            lab[body & (np.abs(X) < 4.0) & (Y > yc + rc) & (Y < yc + rc + 35.0)] = T.BONE
        if not disc:
            lab[
                body
                & (np.abs(Y - yc + 2.0) < 5.0)
                & (np.abs(X) > rc)
                & (np.abs(X) < rc + 26.0)
                & np.isin(lab, (T.MUSCLE, T.FAT))
            ] = T.BONE


# -- drawing one anatomy (Anatomy.draw), in the order of its random numbers ------------------


@dataclass(frozen=True)
class _Layers:
    """Body outline and layers: drawn first, as everything else is placed relative to them."""

    body_a: float
    body_b: float
    body_yc: float
    fat: float
    fat_ant: float
    muscle: float
    muscle_post: float
    muscle_ant: float
    rib_layer: float

    @classmethod
    def draw(cls, rng: np.random.Generator, s: float) -> _Layers:
        """The outline's semi-axes and centre, then the layer thicknesses (fat, muscle, ribs)."""
        u = rng.uniform
        return cls(
            body_a=150.0 * s * u(0.95, 1.05),
            body_b=108.0 * s * u(0.93, 1.05),
            body_yc=-12.0 + u(-4, 4),
            fat=u(7.0, 20.0) * s,
            fat_ant=u(0.0, 10.0),
            muscle=u(9.0, 14.0),
            muscle_post=u(24.0, 34.0),
            muscle_ant=u(5.0, 12.0),
            rib_layer=u(10.0, 12.0),
        )


@dataclass(frozen=True)
class _Landmarks:
    """Spine, lung, heart, hilum and arch positions: what the tubes and the clutter are anchored to."""

    vertebra_radius: float
    vertebra_y: float
    x_mid: float
    apex_z: float
    dome_right: float
    heart_axes: tuple[float, float, float]
    heart_z: float
    heart_centre: tuple[float, float, float]
    trachea_y: float
    carina_z: float
    hilum_right: tuple[float, float, float]
    hilum_left: tuple[float, float, float]
    aorta_x: float
    aorta_y: float
    arch_z: float
    asc: tuple[float, float, float]
    trunk: tuple[float, float, float]
    bifurcation: tuple[float, float, float]
    atrium: tuple[tuple[float, float, float], tuple[float, float, float]]

    @classmethod
    def draw(cls, rng: np.random.Generator, s: float, layers: _Layers) -> _Landmarks:
        """Place the landmarks inside the layers; their random numbers come right after the layers'."""
        u = rng.uniform
        body_yc, body_b = layers.body_yc, layers.body_b
        vertebra_radius = 17.0 * s * u(0.93, 1.07)
        cavity_back = body_yc + body_b - (layers.fat + layers.muscle + layers.muscle_post + layers.rib_layer)
        vertebra_y = cavity_back + 0.15 * vertebra_radius
        x_mid = u(4.0, 10.0)
        apex_z = 100.0 + u(-8, 8)
        dome_right = -120.0 + u(-10, 10)
        heart_axes = (62.0 * s * u(0.9, 1.1), 47.0 * s * u(0.9, 1.1), 50.0 * s * u(0.9, 1.1))
        heart_z = dome_right + u(15.0, 30.0)
        heart_centre = (x_mid + 25.0 * s + u(-5, 5), body_yc - 22.0 * s + u(-5, 5), heart_z)
        carina_z = u(-8.0, 8.0)
        # the left atrium: behind the heart, in front of the oesophagus, below the carina; the
        # pulmonary veins run from it across the lower hila (where real CT shows them joining
        # the heart border)
        atrium_y = vertebra_y - vertebra_radius - 28.0
        return cls(
            vertebra_radius=vertebra_radius,
            vertebra_y=vertebra_y,
            x_mid=x_mid,
            apex_z=apex_z,
            dome_right=dome_right,
            heart_axes=heart_axes,
            heart_z=heart_z,
            heart_centre=heart_centre,
            trachea_y=vertebra_y - vertebra_radius - 18.0,
            carina_z=carina_z,
            hilum_right=(x_mid - 42.0 * s, body_yc + u(-6, 6), carina_z - 25.0),
            hilum_left=(x_mid + 44.0 * s, body_yc + u(-6, 6), carina_z - 40.0),
            aorta_x=x_mid + vertebra_radius + 8.0,
            aorta_y=vertebra_y - 0.7 * vertebra_radius,
            arch_z=carina_z + 45.0 + u(-5, 5),
            asc=(x_mid + 2.0, body_yc - 28.0 * s, heart_z + heart_axes[2] * 0.6),
            trunk=(x_mid + 18.0 * s, body_yc - 30.0 * s, heart_z + heart_axes[2] * 0.55),
            bifurcation=(x_mid + 12.0, body_yc - 12.0, carina_z - 12.0),
            atrium=((x_mid - 22.0 * s, atrium_y, carina_z - 50.0), (x_mid + 26.0 * s, atrium_y, carina_z - 50.0)),
        )

    def anatomy_fields(self) -> dict[str, Any]:
        """The landmarks that :class:`Anatomy` keeps (the others only place tubes and clutter)."""
        names = ("vertebra_radius", "vertebra_y", "x_mid", "apex_z", "dome_right", "heart_centre", "heart_axes")
        names += ("trachea_y", "carina_z", "hilum_right", "hilum_left", "atrium")
        return {name: getattr(self, name) for name in names}

    def tubes(self, s: float, body_yc: float) -> tuple[Tube, ...]:
        """All mediastinal tubes, in painting order (a later tube paints over an earlier one)."""
        return self._central_tubes(s, body_yc) + self._branch_tubes(s, body_yc)

    def _central_tubes(self, s: float, body_yc: float) -> tuple[Tube, ...]:
        """Aorta, superior vena cava, pulmonary arteries, oesophagus, trachea and main bronchi."""
        x_mid, asc, arch_z, aorta_x, aorta_y = self.x_mid, self.asc, self.arch_z, self.aorta_x, self.aorta_y
        trachea_y, carina_z, hilum_right, hilum_left = self.trachea_y, self.carina_z, self.hilum_right, self.hilum_left
        return (
            # ascending aorta, arch, descending aorta
            Tube(
                (
                    asc,
                    (asc[0], asc[1], arch_z),
                    (aorta_x, aorta_y - 25.0, arch_z + 8.0),
                    (aorta_x, aorta_y, arch_z),
                    (aorta_x, aorta_y, -400.0),
                ),
                13.0 * s,
                T.BLOOD,
                2.5,
                T.MEDIASTINAL_FAT,
            ),
            # superior vena cava
            Tube(
                (
                    (x_mid - 24.0 * s, body_yc - 28.0 * s, 400.0),
                    (x_mid - 24.0 * s, body_yc - 26.0 * s, self.heart_z + 20.0),
                ),
                9.0 * s,
                T.BLOOD,
                2.5,
                T.MEDIASTINAL_FAT,
            ),
            # pulmonary trunk and arteries to the hila
            Tube((self.trunk, self.bifurcation, hilum_left), 11.0 * s, T.BLOOD),
            Tube((self.bifurcation, hilum_right), 10.0 * s, T.BLOOD),
            # oesophagus
            Tube(
                (
                    (x_mid - 3.0, self.vertebra_y - self.vertebra_radius - 6.0, 400.0),
                    (x_mid + 8.0, self.vertebra_y - self.vertebra_radius - 10.0, self.dome_right - 20.0),
                ),
                7.0,
                T.MEDIASTINAL_SOFT,
            ),
            # trachea and main bronchi (air lumen, soft-tissue wall)
            Tube(((0.0, trachea_y, 400.0), (0.0, trachea_y, carina_z)), 8.5 * s, T.TRACHEA, 2.0),
            Tube(((0.0, trachea_y, carina_z), hilum_right), 6.5 * s, T.TRACHEA, 1.8),
            Tube(((0.0, trachea_y, carina_z), hilum_left), 6.0 * s, T.TRACHEA, 1.8),
        )

    def _branch_tubes(self, s: float, body_yc: float) -> tuple[Tube, ...]:
        """Branches of the aortic arch, the left brachiocephalic and azygos veins, the left atrium."""
        x_mid, asc, arch_z, aorta_x, aorta_y = self.x_mid, self.asc, self.arch_z, self.aorta_x, self.aorta_y
        return (
            # branches of the arch: brachiocephalic trunk, left common carotid, left subclavian
            Tube(
                ((asc[0] + 2.0, asc[1] + 8.0, arch_z + 6.0), (x_mid - 14.0 * s, asc[1] + 12.0, 400.0)),
                6.5 * s,
                T.BLOOD,
                1.5,
                T.MEDIASTINAL_FAT,
            ),
            Tube(
                ((x_mid + 10.0, asc[1] + 16.0, arch_z + 10.0), (x_mid + 14.0 * s, asc[1] + 18.0, 400.0)),
                4.0 * s,
                T.BLOOD,
                1.5,
                T.MEDIASTINAL_FAT,
            ),
            Tube(
                ((aorta_x - 2.0, aorta_y - 18.0, arch_z + 10.0), (x_mid + 28.0 * s, aorta_y - 14.0, 400.0)),
                5.0 * s,
                T.BLOOD,
                1.5,
                T.MEDIASTINAL_FAT,
            ),
            # left brachiocephalic vein crossing in front of the branches to the superior vena cava
            Tube(
                ((x_mid + 45.0 * s, asc[1] - 6.0, arch_z + 40.0), (x_mid - 24.0 * s, asc[1] - 2.0, arch_z + 22.0)),
                5.5 * s,
                T.BLOOD,
                1.5,
                T.MEDIASTINAL_FAT,
            ),
            # azygos vein up the right side of the spine, arching over the right main bronchus
            Tube(
                (
                    (x_mid - 10.0, self.vertebra_y - self.vertebra_radius - 2.0, -400.0),
                    (x_mid - 10.0, self.vertebra_y - self.vertebra_radius - 2.0, self.carina_z + 8.0),
                    (x_mid - 24.0 * s, body_yc - 26.0 * s, self.carina_z + 14.0),
                ),
                4.0,
                T.BLOOD,
            ),
            Tube(self.atrium, 13.0 * s, T.BLOOD),
        )


def _draw_details(rng: np.random.Generator, s: float, layers: _Layers, marks: _Landmarks) -> dict[str, Any]:
    """Ribs, sternum, vertebrae, lung apex and domes, mediastinal band and heart: drawn after the landmarks."""
    u = rng.uniform
    return dict(
        rib_period=u(24.0, 28.0),
        rib_height=u(10.0, 12.0),
        rib_phase=u(0.0, 30.0),
        rib_tilt=u(25.0, 35.0),
        sternum_half_width=u(13.0, 17.0),
        sternum_top=marks.apex_z + 10.0,
        sternum_bottom=marks.heart_z - 35.0,
        vertebra_period=u(26.0, 30.0),
        vertebra_phase=u(0.0, 30.0),
        apex_dx=u(45.0, 60.0) * s,
        apex_y=layers.body_yc + u(0.0, 20.0),
        apex_radius=u(40.0, 55.0),
        dome_left=marks.dome_right - u(8.0, 20.0),
        dome_dx=u(55.0, 70.0) * s,
        dome_y=layers.body_yc - u(5.0, 20.0),
        dome_radius=u(80.0, 100.0),
        gastric_bubble=bool(u() < 0.6),
        band_half_width=u(18.0, 24.0) * s,
        heart_angle=np.deg2rad(u(25.0, 45.0)),
        heart_wall=u(8.0, 12.0),
        couch_gap=u(0.0, 4.0),
    )


def _draw_clutter(
    rng: np.random.Generator, layers: _Layers, marks: _Landmarks, band_half_width: float, dome_left: float
) -> dict[str, Any]:
    """The clutter of :mod:`oncoqi.phantom.clutter`, drawn last so that it changed no earlier parameter."""
    body_a, body_b, body_yc = layers.body_a, layers.body_b, layers.body_yc
    heart_z, heart_axes, apex_z = marks.heart_z, marks.heart_axes, marks.apex_z
    blobs = mediastinal_nodes(
        rng,
        marks.x_mid,
        band_half_width,
        body_yc - 0.8 * body_b,
        marks.vertebra_y - marks.vertebra_radius,
        heart_z + 0.3 * heart_axes[2],
        apex_z,
    )
    blobs += chest_wall_nodes(rng, body_a, body_b, body_yc, _lung_bottom(marks.dome_right, dome_left), apex_z + 20.0)
    chest_wall = ChestWall.draw(rng, apex_z)
    blobs += pericardial_fat_pads(rng, marks.heart_centre, heart_axes)
    anterior = AnteriorMediastinum.draw(
        rng, heart_z, marks.arch_z + 25.0, marks.asc[1], band_half_width, body_yc - body_b
    )
    return dict(blobs=blobs, chest_wall=chest_wall, anterior=anterior, dependent=DependentDensity.draw(rng))


def _lung_bottom(dome_right: float, dome_left: float) -> float:
    """Lowest lung z (mm): the posterior costophrenic recess, about 55 mm below the lower dome."""
    return min(dome_right, dome_left) - 55.0


def _paint_tube(
    lab: np.ndarray,
    cavity: np.ndarray,
    tube: Tube,
    X: np.ndarray,
    Y: np.ndarray,
    z: float,
    x: np.ndarray,
    y: np.ndarray,
) -> None:
    """Paint the part of a polyline tube that crosses the slice at height z (inside the cavity)."""
    reach = tube.radius + tube.wall
    pts = np.asarray(tube.points, dtype=float)
    for p0, p1 in zip(pts[:-1], pts[1:]):
        if not min(p0[2], p1[2]) - reach <= z <= max(p0[2], p1[2]) + reach:
            continue
        lo = np.minimum(p0, p1) - reach
        hi = np.maximum(p0, p1) + reach
        window_ji = slice_window(x, y, lo, hi)
        if window_ji is None:
            continue
        j, i = window_ji
        d = _segment_distance(X[j, i], Y[j, i], z, p0, p1)
        window = lab[j, i]
        inside = cavity[j, i]
        if tube.wall > 0:
            window[inside & (d <= reach) & (window != tube.tissue)] = tube.wall_tissue
        window[inside & (d <= tube.radius)] = tube.tissue


def _segment_distance(X: np.ndarray, Y: np.ndarray, z: float, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance (mm) from points (X, Y, z) to the segment p0-p1."""
    d = p1 - p0
    length2 = float(d @ d)
    px, py, pz = X - p0[0], Y - p0[1], z - p0[2]
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / max(length2, 1e-12), 0.0, 1.0)
    return np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2)
