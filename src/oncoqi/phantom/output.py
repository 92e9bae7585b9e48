"""Write a generated study: DICOM series and the ground-truth folder.

Layout::

    <out>/CT/*.dcm                  CT Image Storage, one file per slice
    <out>/PET/*.dcm                 PET Image Storage (petct only)
    <out>/truth/tumor_label.nrrd    0 background, 1..n tumours, CT grid
    <out>/truth/lung_mask.nrrd      0 outside, 1 right lung, 2 left lung, CT grid
    <out>/truth/tissue_label.nrrd   tissue classes (see truth.json "tissue_classes"), CT grid
    <out>/truth/truth.json          seed, options, UIDs, per-tumour and per-PET-region truth

Every file is written under a temporary name in its folder and renamed into place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from oncoqi.atomic import write_text, write_volume
from oncoqi.dicom.write import SeriesInfo, write_series
from oncoqi.errors import OncoQIError
from oncoqi.phantom.study import PhantomResult

CT_SERIES_NUMBER = 2
PET_SERIES_NUMBER = 3


class OutputExistsError(OncoQIError):
    """The output folder already holds a study and overwriting was not asked for."""


def write_study(
    result: PhantomResult, out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> dict[str, list[Path]]:
    """Write the study's DICOM series and truth files under ``out_dir``.

    Parameters
    ----------
    result
        From :func:`~oncoqi.phantom.study.make_ct` or :func:`~oncoqi.phantom.study.make_petct`.
    out_dir
        Output folder (created).
    overwrite
        Replace the ``*.dcm`` files of an earlier study in ``CT/`` and ``PET/``; without it an
        existing study is an error, so that two studies are never mixed in one series folder.

    Returns
    -------
    dict
        ``{"CT": [...], "PET": [...], "truth": [...]}`` lists of the files written.

    Raises
    ------
    OutputExistsError
        When ``CT/`` or ``PET/`` already hold DICOM files and ``overwrite`` is false.
    """
    out = Path(out_dir)
    folders = {"CT": out / "CT", "PET": out / "PET"}
    old = [p for folder in folders.values() if folder.is_dir() for p in folder.glob("*.dcm")]
    if old and not overwrite:
        raise OutputExistsError(
            f"{out} already holds a study ({len(old)} DICOM files in CT/ or PET/); "
            "choose another folder or ask to replace it (overwrite)",
            setting="overwrite",
        )
    for path in old:
        path.unlink()
    written: dict[str, list[Path]] = {"CT": [], "PET": [], "truth": []}
    written["CT"] = write_series(
        result.ct,
        folders["CT"],
        modality="CT",
        study=result.study,
        series=SeriesInfo(
            series_number=CT_SERIES_NUMBER,
            series_description="Thorax phantom CT",
            series_uid=result.ct_series_uid,
            series_datetime=result.ct_datetime,
        ),
    )
    if result.pet is not None:
        written["PET"] = write_series(
            result.pet,
            folders["PET"],
            modality="PT",
            study=result.study,
            series=SeriesInfo(
                series_number=PET_SERIES_NUMBER,
                series_description="Thorax phantom PET FDG AC",
                series_uid=result.pet_series_uid,
                series_datetime=result.pet_datetime,
            ),
            pet=result.pet_info,
        )
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    for name, image in (
        ("tumor_label.nrrd", result.tumour_label),
        ("lung_mask.nrrd", result.lung_mask),
        ("tissue_label.nrrd", result.tissue),
    ):
        written["truth"].append(write_volume(image, truth / name))
    written["truth"].append(write_text(json.dumps(result.truth, indent=2) + "\n", truth / "truth.json"))
    return written
