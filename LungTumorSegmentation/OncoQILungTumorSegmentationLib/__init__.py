"""Qt-free part of the OncoQILungTumorSegmentation module (imports ``slicer``, numpy and ``oncoqi`` only).

Imported lazily by ``OncoQILungTumorSegmentation.py`` after ``oncoqi`` has been ensured, and directly by
the pytest tier on ``slicer-core``.
"""
