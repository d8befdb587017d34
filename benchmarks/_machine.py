"""Machine facts printed by the benchmark scripts beside their numbers."""

import os
import platform


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
        load = ", load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}){memory}, Linux {platform.release()}{load}"
