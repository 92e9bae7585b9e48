"""Codes of TID 1500 measurement reports, and the named measurements OncoQI writes.

Every measurement has a quantity (concept name), a UCUM unit, and optionally a derivation
(mean, maximum, ...) and a method. The codes are those QuantitativeReporting, PET-IndiC and
Slicer's segment statistics already put in SRs, so that dcmqi's ``tid1500reader``, OHIF and
Slicer read our values under the names they know:

===================  ===========================================  ==============  ====================
key                  quantity                                     unit            derivation / method
===================  ===========================================  ==============  ====================
volume               118565006 SCT Volume                         ml              method 126030 DCM
ct_mean/min/max/std  112031 DCM Attenuation Coefficient           [hnsf'U]        mean/min/max/std
suvbw_mean/min/...   126401 DCM SUVbw                             {SUVbw}g/ml     mean/min/max/std, method 126410
suvbw_peak           126401 DCM SUVbw                             {SUVbw}g/ml     126031 DCM Peak Value Within ROI
mtv                  126032 DCM Metabolic Volume                  ml              method 126030 DCM
tlg                  126033 DCM Total Lesion Glycolysis           g               -
recist_long_axis     103339001 SCT Long Axis                      mm              -
recist_short_axis    131189007 SCT Perpendicular Axis             mm              -
===================  ===========================================  ==============  ====================

Mean/minimum/maximum/standard deviation are SNOMED CT 373098007, 255605001, 56851009 and
386136009 (the retired SRT codes that PET-IndiC still writes are read as these). The SUV
quantity, unit and method codes of every SUV flavour are in :mod:`oncoqi.dicom.codes`, the one
place the PET family's ``SUVType`` and its Real World Value Mapping take them from.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from oncoqi.dicom.codes import SUV_METHODS, SUV_QUANTITIES, SUV_UNITS

# -- content item concept names of TID 1500 / 1411 / 4019 (what the reader looks for) ---------
IMAGING_MEASUREMENT_REPORT = codes.DCM.ImagingMeasurementReport  # 126000 DCM
IMAGING_MEASUREMENTS = codes.DCM.ImagingMeasurements  # 126010 DCM
MEASUREMENT_GROUP = Code("125007", "DCM", "Measurement Group")
TRACKING_IDENTIFIER = Code("112039", "DCM", "Tracking Identifier")
TRACKING_UID = Code("112040", "DCM", "Tracking Unique Identifier")
FINDING = Code("121071", "DCM", "Finding")
FINDING_SITE = codes.SCT.FindingSite  # 363698007 SCT
LATERALITY = Code("272741003", "SCT", "Laterality")
REFERENCED_SEGMENT = codes.DCM.ReferencedSegment  # 121191 DCM
SOURCE_SERIES = codes.DCM.SourceSeriesForSegmentation  # 121232 DCM
MEASUREMENT_METHOD = Code("370129005", "SCT", "Measurement Method")
DERIVATION = codes.DCM.Derivation  # 121401 DCM
ALGORITHM_NAME = codes.DCM.AlgorithmName  # 111001 DCM
ALGORITHM_VERSION = codes.DCM.AlgorithmVersion  # 111003 DCM
ACTIVITY_SESSION = Code("C67447", "NCIt", "Activity Session")
TIME_POINT = Code("C2348792", "UMLS", "Time Point")
OBSERVER_TYPE = Code("121005", "DCM", "Observer Type")
PERSON_OBSERVER_NAME = codes.DCM.PersonObserverName  # 121008 DCM
DEVICE_OBSERVER_NAME = codes.DCM.DeviceObserverName  # 121013 DCM
DEVICE_OBSERVER_UID = codes.DCM.DeviceObserverUID  # 121012 DCM
PROCEDURE_REPORTED = Code("121058", "DCM", "Procedure reported")

# -- document defaults ------------------------------------------------------------------------
#: Procedure reported when none is given (what dcmqi and QuantitativeReporting write).
IMAGING_PROCEDURE = codes.SCT.ImagingProcedure  # 363679005 SCT
PERSON = codes.DCM.Person  # 121006 DCM
DEVICE = codes.DCM.Device  # 121007 DCM

# -- quantities, units, derivations, methods --------------------------------------------------
VOLUME = codes.SCT.Volume  # 118565006 SCT
ATTENUATION_COEFFICIENT = codes.DCM.AttenuationCoefficient  # 112031 DCM
METABOLIC_VOLUME = codes.DCM.MetabolicVolume  # 126032 DCM
TOTAL_LESION_GLYCOLYSIS = codes.DCM.TotalLesionGlycolysis  # 126033 DCM
LONG_AXIS = codes.SCT.LongAxis  # 103339001 SCT
PERPENDICULAR_AXIS = codes.SCT.PerpendicularAxis  # 131189007 SCT

MILLILITER = Code("ml", "UCUM", "milliliter")
MILLIMETER = Code("mm", "UCUM", "millimeter")
GRAM = Code("g", "UCUM", "gram")
HOUNSFIELD_UNIT = codes.UCUM.HounsfieldUnit  # [hnsf'U]

MEAN = codes.SCT.Mean  # 373098007 SCT
MINIMUM = codes.SCT.Minimum  # 255605001 SCT
MAXIMUM = codes.SCT.Maximum  # 56851009 SCT
STANDARD_DEVIATION = codes.SCT.StandardDeviation  # 386136009 SCT
PEAK = codes.DCM.PeakValueWithinROI  # 126031 DCM

SUM_OF_SEGMENTED_VOXELS = codes.DCM.SumOfSegmentedVoxelMethodForVolume  # 126030 DCM

SUVBW = SUV_QUANTITIES["suvbw"]  # 126401 DCM
SUVBW_UNIT = SUV_UNITS["suvbw"]  # {SUVbw}g/ml UCUM
SUVBW_METHOD = SUV_METHODS["suvbw"]  # 126410 DCM

#: The derivations ``segment_statistics`` computes, by key suffix.
DERIVATIONS: dict[str, Code] = {"mean": MEAN, "min": MINIMUM, "max": MAXIMUM, "std": STANDARD_DEVIATION}


@dataclass(frozen=True)
class MeasurementKind:
    """The codes of one named measurement (see the module table)."""

    quantity: Code
    unit: Code
    derivation: Code | None = None
    method: Code | None = None


def _standard() -> dict[str, MeasurementKind]:
    table = {
        "volume": MeasurementKind(VOLUME, MILLILITER, method=SUM_OF_SEGMENTED_VOXELS),
        "mtv": MeasurementKind(METABOLIC_VOLUME, MILLILITER, method=SUM_OF_SEGMENTED_VOXELS),
        "tlg": MeasurementKind(TOTAL_LESION_GLYCOLYSIS, GRAM),
        "recist_long_axis": MeasurementKind(LONG_AXIS, MILLIMETER),
        "recist_short_axis": MeasurementKind(PERPENDICULAR_AXIS, MILLIMETER),
        "suvbw_peak": MeasurementKind(SUVBW, SUVBW_UNIT, PEAK, SUVBW_METHOD),
    }
    for suffix, derivation in DERIVATIONS.items():
        table[f"ct_{suffix}"] = MeasurementKind(ATTENUATION_COEFFICIENT, HOUNSFIELD_UNIT, derivation)
        table[f"suvbw_{suffix}"] = MeasurementKind(SUVBW, SUVBW_UNIT, derivation, SUVBW_METHOD)
    return table


#: Named measurements: key -> codes. JSON may give ``{"name": key, "value": v}``.
STANDARD_MEASUREMENTS: dict[str, MeasurementKind] = _standard()
