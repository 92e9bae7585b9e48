"""Enumerations of the PET family: SUV flavours and the DICOM PET header terms we act on.

Each :class:`SUVType` carries everything that must stay consistent between the factor
computation, the Real World Value Mapping object and the reports that cite it: the key used in
JSON output, the UCUM unit code, the DICOM quantity code and the calculation-method code.
"""

from __future__ import annotations

from enum import Enum

from pydicom.sr.coding import Code

from oncoqi.dicom.codes import SUV_METHODS, SUV_QUANTITIES, SUV_UNITS


class SUVType(Enum):
    """The SUV normalisations OncoQI computes.

    ``SUVbw``
        Body weight: ``SUVbw = C * W / D`` in g/ml (C activity concentration in Bq/ml, W body
        weight in g, D decay-corrected injected activity in Bq).
    ``SUL`` (``SUVlbm(Janma)``)
        Lean body mass by Janmahasatian et al. (2005): ``SUL = C * LBM / D`` in g/ml.
    ``SUVbsa``
        Body surface area by Du Bois & Du Bois (1916): ``SUVbsa = C * BSA / D`` in cm2/ml.

    The unit codes follow the QIICR / PET-IndiC spelling (annotation first, ``{SUVbw}g/ml``);
    UCUM treats annotations as comments, so ``g/ml{SUVbw}`` (the spelling of DICOM CID 85) is
    the same unit.
    """

    BW = "suvbw"
    SUL = "sul"
    BSA = "suvbsa"

    @property
    def key(self) -> str:
        """Key of this flavour in JSON output (``suvbw``, ``sul``, ``suvbsa``)."""
        return self.value

    @property
    def label(self) -> str:
        """Short name, at most 16 characters (used as the RWVM LUT Label)."""
        return {"suvbw": "SUVbw", "sul": "SUVlbm(Janma)", "suvbsa": "SUVbsa"}[self.value]

    @property
    def ucum(self) -> str:
        """UCUM code of the unit of this SUV."""
        return str(self.unit_code.value)

    @property
    def meaning(self) -> str:
        """Code meaning of the unit (DICOM CID 85)."""
        return str(self.unit_code.meaning)

    @property
    def unit_code(self) -> Code:
        """The unit as a coded concept (UCUM)."""
        return SUV_UNITS[self.value]

    @property
    def quantity_code(self) -> Code:
        """The quantity (DICOM CID 7180): 126401 SUVbw, 126405 SUVlbm(Janma), 126403 SUVbsa."""
        return SUV_QUANTITIES[self.value]

    @property
    def method_code(self) -> Code:
        """The calculation method (126410 body weight, 126411 lean body mass, 126412 BSA)."""
        return SUV_METHODS[self.value]

    @classmethod
    def parse(cls, text: str) -> SUVType:
        """Accept ``bw``/``suvbw``, ``sul``/``lbm``/``suvlbm``, ``bsa``/``suvbsa`` (any case).

        Raises
        ------
        ValueError
            For any other text.
        """
        t = text.strip().lower()
        aliases = {
            "bw": cls.BW,
            "suvbw": cls.BW,
            "sul": cls.SUL,
            "lbm": cls.SUL,
            "suvlbm": cls.SUL,
            "bsa": cls.BSA,
            "suvbsa": cls.BSA,
        }
        if t not in aliases:
            raise ValueError(f"unknown SUV type {text!r}: use bw, sul or bsa")
        return aliases[t]


class DecayCorrection(Enum):
    """Decay Correction (0054,1102): the time the pixel values are decay-corrected to."""

    #: Decay-corrected to the acquisition start (the Series Date/Time for PET).
    START = "START"
    #: Decay-corrected to the radiopharmaceutical administration time.
    ADMIN = "ADMIN"
    #: Not decay-corrected: each frame would need its own decay factor; refused.
    NONE = "NONE"


class PixelUnits(Enum):
    """Units (0054,1001) values that OncoQI can turn into SUV."""

    #: Becquerels per millilitre.
    BQML = "BQML"
    #: Counts; only with the Philips private scale factors (7053,1000) or (7053,1009).
    CNTS = "CNTS"
    #: Grams per millilitre: already an SUV (the flavour in SUV Type (0054,1006)).
    GML = "GML"
