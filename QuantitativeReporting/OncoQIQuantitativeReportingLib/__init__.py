"""Qt-free part of the OncoQIQuantitativeReporting module (imports ``slicer``, ``vtk``, numpy and ``oncoqi`` only).

Imported lazily by ``OncoQIQuantitativeReporting.py`` after ``oncoqi`` has been ensured, and directly by
the pytest tier on ``slicer-core``.
"""
