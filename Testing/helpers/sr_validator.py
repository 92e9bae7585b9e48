"""pixelmed's DicomSRValidator (Debian ``pixelmed-apps``): the SR template checker of the field.

dciodvfy checks the SR IOD but no template; pixelmed checks TID 1500 and the templates it
includes (1411, 1419, 4019, 300, ...). Two quirks, from ``../shared/research/validators.md``: on Java
17 it needs the JAXP limits lifted (otherwise it stops on its own XSLT and reports nothing), and it
exits 0 whatever it finds, so the findings are read from its output and "IOD validation complete"
must be there (a crash is not a pass).

The JVM runs with its quick compiler only and the serial collector (:data:`JVM_SPEED`): a check is
one short run, where the optimising compiler's and the parallel collector's threads cost more CPU
than they save (measured on a one-lesion SR: 10.6 s of CPU by default, 5.3 s so). They change how
fast the validator runs, not what it finds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JAR = Path("/usr/share/java/pixelmed.jar")
JAXP_LIMITS = [
    f"-Djdk.xml.{name}=0"
    for name in (
        "maxGeneralEntitySizeLimit",
        "totalEntitySizeLimit",
        "entityExpansionLimit",
        "xpathExprOpLimit",
        "xpathExprGrpLimit",
        "xpathTotalOpLimit",
    )
]


#: JIT and garbage-collector settings for a short JVM run (see the module documentation).
JVM_SPEED = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]


def pixelmed_findings(path: str | Path) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` pixelmed's DicomSRValidator reports for the SR at ``path``.

    Skips (fails under ``ONCOQI_REQUIRE_ALL=1``) when Java or the pixelmed jar is missing
    (``scripts/setup-dev.sh`` installs ``pixelmed-apps``).
    """
    java = shutil.which("java")
    if java is None or not JAR.is_file():
        pytest.skip("pixelmed's DicomSRValidator is not installed (Debian pixelmed-apps; scripts/setup-dev.sh)")
    proc = subprocess.run(
        [java, *JVM_SPEED, *JAXP_LIMITS, "-cp", str(JAR), "com.pixelmed.validate.DicomSRValidator", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(path).parent,
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    assert any("IOD validation complete" in line for line in lines), "\n".join(lines[-20:])
    return [line for line in lines if line.startswith("Error")], [line for line in lines if line.startswith("Warning")]
