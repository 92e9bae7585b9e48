"""The embedded sample PET/CT study in Slicer's Sample Data module (category "OncoQI").

The sample ships inside the extension (``oncoqi/data/sample_petct.zip``: a synthetic thorax CT and
FDG PET as DICOM, with the true tumours), so it needs no download. Each OncoQI module registers it
when Slicer has started (``startupCompleted``, as the module template does); it is registered once
whichever module comes first. Clicking it loads the CT (HU), the PET in SUVbw and the true tumours
as a segmentation: everything the four modules take as input.

Only ``slicer`` is imported at registration; the core is made importable when the user clicks.
"""

from __future__ import annotations

import logging
from typing import Any

#: The Sample Data category and the sample's name (no other extension of the Index uses them).
CATEGORY = "OncoQI"
SAMPLE_NAME = "OncoQIPETCTPhantom"
#: Names of the nodes the sample loads.
NODE_NAMES = ("OncoQI sample CT", "OncoQI sample PET (SUVbw)", "OncoQI sample true tumours")

_registered = False


def register_sample_data(thumbnail: str) -> bool:
    """Register the sample with Slicer's Sample Data module, once per session.

    Parameters
    ----------
    thumbnail
        PNG shown on the sample's button (the calling module's icon).

    Returns
    -------
    bool
        True when this call registered it; False when it already was, or Sample Data is disabled.
    """
    global _registered
    if _registered:
        return False
    try:
        import SampleData
    except ImportError:  # Sample Data disabled (--modules-to-ignore): nothing to register with
        logging.info("OncoQI: the Sample Data module is not loaded; the sample is not registered")
        return False
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category=CATEGORY,
        sampleName=SAMPLE_NAME,
        thumbnailFileName=thumbnail,
        nodeNames=list(NODE_NAMES),
        customDownloader=load_sample,
    )
    _registered = True
    return True


def load_sample(source: Any = None) -> list[Any]:
    """Load the sample into the scene: CT, PET in SUVbw and the true tumours (``customDownloader``).

    Returns
    -------
    list
        The CT volume node, the PET volume node and the segmentation node.
    """
    from OncoQISlicer.dependencies import ensure_core

    ensure_core("OncoQI sample data")
    import tempfile
    from pathlib import Path

    import numpy as np
    import slicer

    from oncoqi.dicom import read_image
    from oncoqi.phantom.sample import extract_sample
    from OncoQISlicer.dicom import load_pet_suv
    from OncoQISlicer.mrml import segmentation_node_from_labels, volume_node_from_image

    scene = slicer.mrmlScene
    with tempfile.TemporaryDirectory(prefix="OncoQISample") as folder:
        root = extract_sample(folder)
        ct_name, pet_name, tumours_name = NODE_NAMES
        ct = volume_node_from_image(scene, read_image(root / "CT"), ct_name)
        pet = load_pet_suv(scene, sorted(str(f) for f in Path(root, "PET").iterdir()), pet_name)
        truth = read_image(root / "truth" / "tumor_label.nrrd")
    names = {int(v): f"True tumour {int(v)}" for v in np.unique(truth.array) if v}
    tumours = segmentation_node_from_labels(scene, truth, names, reference_volume_node=ct, name=tumours_name)
    return [ct, pet, tumours]
