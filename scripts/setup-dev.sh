#!/usr/bin/env bash
# Install everything the OncoQI test suite needs on a Debian/Ubuntu machine, from this repository's
# own files: the DICOM validators (dicom3tools' dciodvfy, dcmtk's dsrdump, pixelmed's DicomSRValidator)
# from apt, and a virtual
# environment .venv with the oncoqi package, its test extras (slicer-core, PySide6, pytest, reference
# tools) and the train extra (TensorFlow, for the Keras-versus-ONNX equivalence test).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dciodvfy >/dev/null 2>&1 || need_apt+=(dicom3tools)
command -v dsrdump >/dev/null 2>&1 || need_apt+=(dcmtk)
[ -f /usr/share/java/pixelmed.jar ] && command -v java >/dev/null 2>&1 || need_apt+=(pixelmed-apps)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing ${need_apt[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip_quietly() {
  # pip's own exit status decides; its output is shown only when it fails.
  if ! .venv/bin/python -m pip install -q "$@" > .venv/pip.log 2>&1; then
    grep -v "^WARNING: Location" .venv/pip.log >&2
    echo "setup-dev: pip install $* failed" >&2
    exit 1
  fi
}
pip_quietly --upgrade pip
pip_quietly -e ".[test,train]"
# Every reference the tests compare against must import (a missing one would only show as skips).
TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python - <<'PY' || { echo "setup-dev: the Python environment is incomplete" >&2; exit 1; }
import importlib
modules = ["oncoqi", "SimpleITK", "pydicom", "highdicom", "pytest", "slicer", "PySide6.QtUiTools", "dcmqi",
           "surface_distance", "pymia", "slicerio", "onnx", "tensorflow", "tf2onnx", "idc_index", "dask.distributed",
           "pyarrow", "jsonschema", "rule_engine", "hypothesis"]
missing = []
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - report every missing module, then fail
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
import slicer
if not hasattr(slicer, "vtkMRMLScene"):
    missing.append("slicer-core's MRML (the unrelated PyPI package 'slicer' shadows it)")
if missing:
    raise SystemExit("missing: " + "; ".join(missing))
PY
for tool in dciodvfy dsrdump DicomSRValidator java; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup-dev: $tool is not installed" >&2; exit 1; }
done
echo "setup-dev: ready (.venv, $(command -v dciodvfy), $(command -v dsrdump), $(command -v DicomSRValidator))"
