"""Cohort batch processing: every study of a folder or TCIA manifest through the whole pipeline.

Modules
-------
:mod:`oncoqi.batch.selection`
    Which CT (axial, most slices through the lungs) and which PET (same frame of reference) of a study.
:mod:`oncoqi.batch.study`
    :func:`run_study`: one study -> :class:`StudyResult` (SEG/SR, indices, QC, log, ``done.json``).
:mod:`oncoqi.batch.cohort`
    :func:`run_cohort`: discovery, resume, local processes or Dask, failures, the cohort files.
:mod:`oncoqi.batch.table`, :mod:`oncoqi.batch.html`, :mod:`oncoqi.batch.qc`
    ``results.csv``/``.parquet`` and ``failures.csv``; ``report.html``; the QC picture.
:mod:`oncoqi.batch.cli`
    ``oncoqi batch``.

See ``Docs/batch.md``.
"""

from oncoqi.batch.cohort import (
    MAX_EXIT_CODE,
    CohortOptions,
    CohortResult,
    DaskMissingError,
    run_cohort,
)
from oncoqi.batch.selection import (
    SelectionError,
    SeriesChoice,
    StudyInput,
    choose_series,
    group_studies,
)
from oncoqi.batch.study import StudyOptions, StudyResult, load_done, run_study

__all__ = [
    "MAX_EXIT_CODE",
    "CohortOptions",
    "CohortResult",
    "DaskMissingError",
    "SelectionError",
    "SeriesChoice",
    "StudyInput",
    "StudyOptions",
    "StudyResult",
    "choose_series",
    "group_studies",
    "load_done",
    "run_cohort",
    "run_study",
]
