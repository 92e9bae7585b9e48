"""The PET/CT phantom of the GTV-1-by-evidence tests: the largest lesion is not FDG-avid.

Two round lung masses (``oncoqi.phantom``, no CT noise or blur, a 6 mm PET blur and no PET noise):
label 1, the larger (:data:`LARGE_ML` ml), takes up FDG like blood pool (SUVbw :data:`LOW_SUV`,
under the 2.5 bound of :mod:`oncoqi.lung.primary`); label 2, the smaller (:data:`AVID_ML` ml), is
the tumour (SUVbw :data:`AVID_SUV`). By size alone label 1 would be GTV-1; by evidence, label 2.
"""

from __future__ import annotations

from oncoqi.phantom import PhantomOptions, TumourSpec

LARGE_ML = 30.0
LOW_SUV = 1.6
AVID_ML = 12.0
AVID_SUV = 8.0


def options() -> PhantomOptions:
    """The phantom study (seed 3, 128 x 128 x 60 CT of 2.97 x 2.97 x 3 mm, 4 mm PET voxels)."""
    return PhantomOptions(
        seed=3,
        size=128,
        slices=60,
        noise_hu=0.0,
        blur_mm=0.0,
        pet_blur_mm=6.0,
        pet_noise=0.0,
        tumours=(
            TumourSpec(volume_ml=LARGE_ML, shape="round", location="parenchyma", suv=LOW_SUV),
            TumourSpec(volume_ml=AVID_ML, shape="round", location="parenchyma", suv=AVID_SUV),
        ),
    )
