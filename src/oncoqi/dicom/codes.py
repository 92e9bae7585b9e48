"""DICOM codes shared by the SR and the PET family's Real World Value Mapping: the SUV flavours.

Kept apart from :mod:`oncoqi.dicom.sr` so that reading SUV factors (:mod:`oncoqi.pet.suv`, used by
the DICOM plugin in the DICOM browser before anything is installed) needs pydicom alone, not the
SR writers and highdicom.
"""

from __future__ import annotations

from pydicom.sr.coding import Code

# SUV flavours, by the key of the flavour (``suvbw``, ``sul``, ``suvbsa``).
#: Quantity (DICOM CID 7180): 126401 SUVbw, 126405 SUVlbm(Janma), 126403 SUVbsa.
SUV_QUANTITIES: dict[str, Code] = {
    "suvbw": Code("126401", "DCM", "SUVbw"),
    "sul": Code("126405", "DCM", "SUVlbm(Janma)"),
    "suvbsa": Code("126403", "DCM", "SUVbsa"),
}
#: Unit (UCUM, meaning from DICOM CID 85), in the QIICR / PET-IndiC spelling (annotation first,
#: ``{SUVbw}g/ml``); UCUM treats annotations as comments, so CID 85's ``g/ml{SUVbw}`` is the same unit.
SUV_UNITS: dict[str, Code] = {
    "suvbw": Code("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight"),
    "sul": Code("{SUVlbm(Janma)}g/ml", "UCUM", "Standardized Uptake Value lean body mass (Janma)"),
    "suvbsa": Code("{SUVbsa}cm2/ml", "UCUM", "Standardized Uptake Value body surface area"),
}
#: Calculation method: 126410 body weight, 126411 lean body mass, 126412 body surface area.
SUV_METHODS: dict[str, Code] = {
    "suvbw": Code("126410", "DCM", "SUV body weight calculation method"),
    "sul": Code("126411", "DCM", "SUV lean body mass calculation method"),
    "suvbsa": Code("126412", "DCM", "SUV body surface area calculation method"),
}
