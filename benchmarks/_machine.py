"""Where a benchmark ran, printed by the benchmark scripts beside their numbers.

The machine (CPUs, memory, kernel, load), the versions of the packages that
matter, the command line, and which checkout of ``sklearn_afm`` was measured.
"""

import os
import platform
import shlex
import subprocess
import sys

# Benchmark the checkout these files live in, not some installed copy.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VERSIONED_PACKAGES = ("tensorflow", "keras", "tf_keras", "deepctr", "scikit-learn", "numpy")


def command_line():
    """Return the command that started this process, quoted for a shell."""
    return shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))


def load_average():
    """Return the 1-, 5- and 15-minute load averages as ``"0.52 0.61 0.70"``."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine_facts(with_load=False):
    """Return a one-line description: CPUs, CPU model, memory, kernel (and load average)."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 1024**3:.1f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    load = ""
    if with_load and hasattr(os, "getloadavg"):
        load = ", load average " + load_average()
    return f"{os.cpu_count()} CPUs ({cpu}){memory}, Linux {platform.release()}{load}"


def package_version(package):
    """Return the installed version of the distribution ``package``, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def versions():
    """Return Python's and the benchmarked packages' versions as one line."""
    parts = [f"Python {platform.python_version()}"]
    for name in VERSIONED_PACKAGES:
        installed = package_version(name)
        parts.append(f"{name} {installed}" if installed is not None else f"{name} not installed")
    return ", ".join(parts)


def git(*arguments):
    """Run ``git ARGUMENTS`` in the checkout; return its stripped stdout."""
    return subprocess.run(
        ["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def checkout_state():
    """The commit of the checkout being benchmarked, and whether sklearn_afm/ has local edits."""
    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "sklearn_afm")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" + uncommitted changes in sklearn_afm/" if dirty else "")
