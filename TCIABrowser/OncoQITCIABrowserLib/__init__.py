"""Qt-free part of the OncoQITCIABrowser module (imports ``oncoqi`` and the standard library only).

Imported lazily by ``OncoQITCIABrowser.py`` after ``oncoqi`` has been ensured, and directly by the pytest
tier.
"""
