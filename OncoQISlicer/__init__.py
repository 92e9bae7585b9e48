"""Qt-free code shared by the four OncoQI Slicer modules.

The package is installed by the extension's top-level ``CMakeLists.txt`` (beside the ``oncoqi`` core)
into the extension's ``qt-scripted-modules`` folder, which Slicer puts on ``sys.path``; the four
modules import it from there. It imports only ``slicer`` (MRML), ``vtk``, numpy and
``oncoqi``, never ``qt`` or ``ctk``, so the same code runs inside Slicer and under pytest on the
``slicer-core`` wheel.

``OncoQISlicer.dependencies``
    Installs the ``oncoqi`` core into Slicer's Python on first use. It does not import ``oncoqi``
    itself, so module files may import it at load time.
``OncoQISlicer.mrml``
    MRML volume and segmentation nodes to and from :class:`oncoqi.Image`. It imports ``oncoqi``,
    so import it only after :func:`OncoQISlicer.dependencies.ensure_core`.
"""
