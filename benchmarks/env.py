"""What every benchmark records about where it ran: the machine, the code measured, and how its
targets print."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def machine(packages: Iterable[str]) -> dict:
    """Cores, CPU model, memory (GiB), Python and the versions of ``packages`` (None when not
    installed), and the load average at the start."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    vers = {}
    for p in packages:
        try:
            vers[p] = md.version(p)
        except md.PackageNotFoundError:
            vers[p] = None
    return {"cores": os.cpu_count(), "cpu": cpu, "arch": platform.machine(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "versions": vers, "load_avg_at_start": os.getloadavg()}


def code_state() -> dict:
    """The commit and the modified files of the code measured (the working tree is what runs)."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO)
        return proc.stdout.rstrip() if proc.returncode == 0 else ""

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "modified": sorted(line[3:] for line in git("status", "--porcelain", "--", "ecodask",
                                                        "benchmarks").splitlines())}


def print_targets(targets: list[dict]) -> None:
    """The targets as a Markdown table (target, value, met)."""
    if targets:
        print("\n| target | value | met |\n|---|---|---|")
        for t in targets:
            print(f"| {t['target']} | {t['value']} | {'yes' if t['met'] else 'no'} |")


def _status_mb(field: str) -> float | None:
    """A field of ``/proc/self/status`` in kB (``VmHWM``, ``VmRSS``), as MB; None where /proc is missing."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def hwm_mb() -> float:
    """This process's peak resident memory (VmHWM), MB; ru_maxrss where /proc is missing."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), MB; NaN where /proc is missing."""
    rss = _status_mb("VmRSS")
    return rss if rss is not None else float("nan")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """``fn()``'s result and its wall seconds."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def fastest(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The fastest of ``repeats`` calls of ``fn`` (seconds, wall clock) and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
