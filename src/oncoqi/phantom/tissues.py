"""Tissue classes of the thorax phantom with their CT numbers and FDG uptake.

Each class belongs to exactly one compartment (outside, chest wall, mediastinum, lung,
abdomen), so that the location of a tumour can be checked from the classes it touches.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """Voxel classes of the tissue map (uint8)."""

    AIR = 0
    COUCH_SHELL = 1
    COUCH_CORE = 2
    FAT = 3
    MUSCLE = 4
    BONE = 5
    MARROW = 6
    CARTILAGE = 7
    SPINAL_CANAL = 8
    MEDIASTINAL_FAT = 9
    MEDIASTINAL_SOFT = 10
    MYOCARDIUM = 11
    BLOOD = 12
    TRACHEA = 13
    LUNG = 14
    PULMONARY_VESSEL = 15
    BRONCHUS = 16
    BRONCHUS_WALL = 17
    TUMOUR = 18
    LIVER = 19
    SPLEEN = 20
    STOMACH_GAS = 21


OUTSIDE = frozenset({Tissue.AIR, Tissue.COUCH_SHELL, Tissue.COUCH_CORE})
CHEST_WALL = frozenset({Tissue.FAT, Tissue.MUSCLE, Tissue.BONE, Tissue.MARROW, Tissue.CARTILAGE, Tissue.SPINAL_CANAL})
MEDIASTINUM = frozenset(
    {Tissue.MEDIASTINAL_FAT, Tissue.MEDIASTINAL_SOFT, Tissue.MYOCARDIUM, Tissue.BLOOD, Tissue.TRACHEA}
)
LUNG = frozenset({Tissue.LUNG, Tissue.PULMONARY_VESSEL, Tissue.BRONCHUS, Tissue.BRONCHUS_WALL, Tissue.TUMOUR})
ABDOMEN = frozenset({Tissue.LIVER, Tissue.SPLEEN, Tissue.STOMACH_GAS})

#: Mean CT number (HU) of each class before texture, blur and noise.
HU: dict[Tissue, float] = {
    Tissue.AIR: -1000.0,
    Tissue.COUCH_SHELL: 400.0,
    Tissue.COUCH_CORE: -700.0,
    Tissue.FAT: -100.0,
    Tissue.MUSCLE: 45.0,
    Tissue.BONE: 900.0,
    Tissue.MARROW: 250.0,
    Tissue.CARTILAGE: 110.0,
    Tissue.SPINAL_CANAL: 20.0,
    Tissue.MEDIASTINAL_FAT: -90.0,
    Tissue.MEDIASTINAL_SOFT: 35.0,
    Tissue.MYOCARDIUM: 45.0,
    Tissue.BLOOD: 40.0,
    Tissue.TRACHEA: -1000.0,
    Tissue.LUNG: -870.0,
    Tissue.PULMONARY_VESSEL: 40.0,
    Tissue.BRONCHUS: -1000.0,
    Tissue.BRONCHUS_WALL: 30.0,
    Tissue.TUMOUR: 35.0,
    Tissue.LIVER: 60.0,
    Tissue.SPLEEN: 45.0,
    Tissue.STOMACH_GAS: -1000.0,
}

#: Share of a study's contrast enhancement (:attr:`oncoqi.phantom.PhantomOptions.contrast_hu`, the
#: rise of blood in HU) that each class takes up, as in a portal-venous chest CT: blood in the heart,
#: great vessels and pulmonary vessels all of it, the liver and spleen about half, the myocardium
#: half, lymph nodes and tumours a fifth (NSCLC enhances 20-60 HU), muscle a tenth. Without it every
#: vessel has the CT number of a tumour, while on an enhanced real CT (LIDC-IDRI-1011) the lung
#: networks' false lesions outside the lungs had that of enhanced blood.
ENHANCEMENT: dict[Tissue, float] = {
    Tissue.BLOOD: 1.0,
    Tissue.PULMONARY_VESSEL: 1.0,
    Tissue.MYOCARDIUM: 0.5,
    Tissue.LIVER: 0.4,
    Tissue.SPLEEN: 0.5,
    Tissue.MEDIASTINAL_SOFT: 0.2,
    Tissue.TUMOUR: 0.2,
    Tissue.MUSCLE: 0.1,
}

#: CT number of the ground-glass part of a part-solid or ground-glass tumour (hazy, partly
#: aerated: about -750 to -300 HU on real CT), and its texture amplitude.
GROUND_GLASS_HU = -550.0
GROUND_GLASS_TEXTURE_HU = 60.0

#: Amplitude (HU, one standard deviation) of the smooth texture added inside each class.
TEXTURE_HU: dict[Tissue, float] = {
    Tissue.FAT: 8.0,
    Tissue.MUSCLE: 6.0,
    Tissue.MARROW: 30.0,
    Tissue.MEDIASTINAL_FAT: 10.0,
    Tissue.LIVER: 5.0,
    Tissue.SPLEEN: 5.0,
    Tissue.LUNG: 25.0,
    Tissue.TUMOUR: 10.0,
}

#: Nominal SUVbw of each class in the PET. The myocardium and tumours get per-study values.
SUV: dict[Tissue, float] = {
    Tissue.AIR: 0.0,
    Tissue.COUCH_SHELL: 0.0,
    Tissue.COUCH_CORE: 0.0,
    Tissue.FAT: 0.3,
    Tissue.MUSCLE: 0.8,
    Tissue.BONE: 0.5,
    Tissue.MARROW: 1.5,
    Tissue.CARTILAGE: 0.6,
    Tissue.SPINAL_CANAL: 0.4,
    Tissue.MEDIASTINAL_FAT: 0.4,
    Tissue.MEDIASTINAL_SOFT: 1.2,
    Tissue.MYOCARDIUM: 3.0,
    Tissue.BLOOD: 1.8,
    Tissue.TRACHEA: 0.0,
    Tissue.LUNG: 0.45,
    Tissue.PULMONARY_VESSEL: 0.45,  # the PET does not resolve the pulmonary tree: lung uptake
    Tissue.BRONCHUS: 0.45,
    Tissue.BRONCHUS_WALL: 0.45,
    Tissue.TUMOUR: 6.0,
    Tissue.LIVER: 2.2,
    Tissue.SPLEEN: 1.9,
    Tissue.STOMACH_GAS: 0.0,
}


def enhanced_hu(contrast_hu: float) -> dict[Tissue, float]:
    """:data:`HU` of a study whose blood is ``contrast_hu`` above its unenhanced CT number (:data:`ENHANCEMENT`)."""
    return {t: value + contrast_hu * ENHANCEMENT.get(t, 0.0) for t, value in HU.items()}


def lookup(table: dict[Tissue, float], default: float = 0.0) -> np.ndarray:
    """A float32 array indexed by class value, for ``lut[labels]``."""
    lut = np.full(max(Tissue) + 1, default, dtype=np.float32)
    for tissue, value in table.items():
        lut[int(tissue)] = value
    return lut


def members(group: frozenset[Tissue]) -> np.ndarray:
    """Class values of ``group`` as an array, for ``np.isin``."""
    return np.array(sorted(int(t) for t in group), dtype=np.uint8)
