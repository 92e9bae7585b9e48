"""Make the embedded sample study ``src/oncoqi/data/sample_petct.zip``.

A small PET/CT phantom (CT 192x192 px over 350 mm, 3 mm slices over 216 mm; PET 96x96 at
4 mm) with two tumours, zipped with deflate together with its truth folder. Deterministic: the
same code gives the same study and UIDs. Run from the repository root::

    PYTHONPATH=src python scripts/make_sample.py [--out src/oncoqi/data/sample_petct.zip]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from oncoqi.phantom import PhantomOptions, TumourSpec, make_petct, write_study

SAMPLE_OPTIONS = PhantomOptions(
    seed=7101,  # drawn 2026-12-07 with the generator of that day; not picked for a result
    tumours=(
        TumourSpec(volume_ml=18.0, shape="lobulated", location="chest_wall", suv=8.0),
        TumourSpec(volume_ml=4.0, shape="spiculated", location="parenchyma", suv=5.0),
    ),
    size=192,
    fov_mm=350.0,
    slice_thickness_mm=3.0,
    slices=72,
    noise_hu=8.0,
    pet_size=96,
    pet_fov_mm=384.0,
    pet_slice_thickness_mm=4.0,
)

#: The test suite fails when the zip grows past this.
MAX_BYTES = 5 * 1024 * 1024


def make_sample(zip_path: Path) -> int:
    """Generate the study and write the zip atomically; returns its size in bytes."""
    result = make_petct(SAMPLE_OPTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study"
        write_study(result, study)
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        partial = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.partial")
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
                for path in sorted(study.rglob("*")):
                    if path.is_file():
                        # fixed timestamps keep the zip byte-identical from run to run
                        info = zipfile.ZipInfo(path.relative_to(study).as_posix(), date_time=(2024, 1, 1, 0, 0, 0))
                        info.compress_type = zipfile.ZIP_DEFLATED
                        archive.writestr(info, path.read_bytes(), compresslevel=9)
            os.replace(partial, zip_path)
        finally:
            partial.unlink(missing_ok=True)
    return zip_path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (1 when the zip is too large)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parent.parent / "src" / "oncoqi" / "data" / "sample_petct.zip"
    parser.add_argument("--out", type=Path, default=default, help="zip to write (default: %(default)s)")
    args = parser.parse_args(argv)
    size = make_sample(args.out)
    print(f"wrote {args.out} ({size / 1e6:.2f} MB)")
    if size > MAX_BYTES:
        print(f"error: the sample is larger than {MAX_BYTES / 1e6:.1f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
