"""The provenance header every benchmark's ``--markdown`` page starts with."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name (Linux), else what :mod:`platform` knows.

    Why: timings differ by processor, not only by core count; the same 2 cores of an AVX2-only
    AMD EPYC ran the lung benchmark's 512 x 512 x 150 CT in 83.6 s where another machine took 40.6 s.
    """
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), cpu)
    return cpu


def provenance(script_file: str, argv: list[str] | None) -> list[str]:
    """Markdown lines: when, on which machine and by which command this run was made (call it first).

    ``script_file`` is the benchmark script's ``__file__``; ``argv`` its arguments (``None``: ``sys.argv``).
    """
    script = Path(script_file).resolve()
    here = script.relative_to(Path.cwd()) if script.is_relative_to(Path.cwd()) else script
    cpu = cpu_name()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    git = ["git", "-C", str(script.parent), "describe", "--always", "--dirty"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip() or "unknown"
    command = f"PYTHONPATH=src python {here} {shlex.join(sys.argv[1:] if argv is None else argv)}".rstrip()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    niceness = os.nice(0) if hasattr(os, "nice") else "unknown"  # POSIX only, as the load average
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"
    return [
        (
            f"Run {when} on {cpu}, {cpus} CPUs available ({os.cpu_count()} in the machine), niceness "
            f"{niceness}, load average {load} at the start; Python {platform.python_version()}, "
            f"OncoQI `{commit}`. Command, from the checkout root:"
        ),
        "",
        f"```sh\n{command}\n```",
    ]
