"""OncoQI core: quantitative oncologic imaging without Slicer.

The package never imports ``slicer``, ``qt``, ``ctk`` or ``vtk``; the Slicer modules of the
extension convert MRML nodes to and from the objects defined here (chiefly
:class:`oncoqi.image.Image`) and call into the sub-packages, listed lowest layer first (a package
imports only from lower layers; ``Testing/test_import_layers.py`` checks it):

``oncoqi.errors``, ``oncoqi.image``
    The error types, and a volume with its exact geometry (LPS).
``oncoqi.metrics``, ``oncoqi.atomic``, ``oncoqi.jsonio``, ``oncoqi.picture``
    Segmentation metrics (Dice, surface distances, detection); atomic writes; strict JSON; PNGs.
``oncoqi.dicom``
    DICOM series discovery, loading with exact geometry, geometry checks, and the encoders of
    SEG, SR (TID 1500) and RTSTRUCT: encoding only.
``oncoqi.phantom``, ``oncoqi.tcia``
    Synthetic thorax CT and PET/CT studies with exact ground truth; TCIA (NBIA) and IDC access.
``oncoqi.lung``, ``oncoqi.pet``
    Lung tumour segmentation on CT (and its training, :mod:`oncoqi.lung.training`); SUV, PET-IndiC
    indices and PET segmentation.
``oncoqi.report``
    Their results measured and written as DICOM SEG + SR, and read back.
``oncoqi.batch``, ``oncoqi.demo``
    The whole pipeline on a cohort; the same on the embedded sample.
"""

from oncoqi.errors import OncoQIError
from oncoqi.image import Image

__version__ = "0.1.0"

__all__ = ["Image", "OncoQIError", "__version__"]
