"""Qt-free part of the OncoQIPETIndiC module (imports ``slicer``, numpy and ``oncoqi`` only).

Imported lazily by ``OncoQIPETIndiC.py`` after ``oncoqi`` has been ensured, and directly by the pytest
tier on ``slicer-core``.
"""
