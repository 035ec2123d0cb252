"""Budgets checked before work: a small input must not be able to ask for gigabytes.

The memory budget is half the memory this process may still use (the smaller of the machine's
available memory and the address-space limit, ``ulimit -v``), or ``AUGCLI_MEMORY_BUDGET`` when set
(bytes, or a number with K, M, G or T). Every refusal names the budget and how to lift it.
"""

from __future__ import annotations

import os
import re

try:
    import resource
except ImportError:  # not POSIX: no address-space limit to respect
    resource = None

from augcli.errors import UsageError

ENV = "AUGCLI_MEMORY_BUDGET"

# Classes an .npz may number without naming them: labels beyond this are almost surely ids or
# corruption, and per-class tables (counts, reports, one-hot labels) grow with the class count.
MAX_CLASSES_UNNAMED = 10_000

# Memory a planned output sample costs besides its pixels: work-plan entries, the transforms it
# records for the manifest and its manifest line, all held until the run ends.
SAMPLE_OVERHEAD = 512
# A shard's pixels are held about three times: its input rows, its output and batch temporaries.
PIXEL_COPIES = 3

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def human(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def available_memory() -> int:
    """Memory this process can still get: MemAvailable, capped by RLIMIT_AS (a ``ulimit -v``)."""
    free = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = 8 << 30  # unknown platform: assume a modest machine
    if resource is None:
        return free
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return min(free, soft) if soft != resource.RLIM_INFINITY else free


def memory_budget() -> tuple[int, str]:
    """(bytes, how it was set) for error messages."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return available_memory() // 2, f"half the available memory; {ENV}=16G, say, sets another"
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
    if not m:
        raise UsageError(f"{ENV}={text!r}: expected a size in bytes, e.g. 8G or 500M")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()]), f"set by {ENV}"


def check_memory(need: int, what: str, remedy: str, error=UsageError) -> None:
    """Raise ``error`` when ``need`` bytes exceed the memory budget."""
    budget, how = memory_budget()
    if need > budget:
        raise error(f"{what} needs about {human(need)} of memory, above the budget of {human(budget)} ({how}); "
                    f"{remedy}")


def check_plan(specs, image_bytes: int, workers: int, where: str) -> None:
    """Refuse a run plan (``shards.ShardSpec`` list) whose outputs cannot fit in memory, before the
    work plan itself is built (for 10^8 samples that plan alone is gigabytes)."""
    per_shard = [int(s.copies.sum()) + (len(s.rows) if s.keep_originals else 0) for s in specs]
    total = sum(per_shard)
    biggest = max(per_shard, default=0)
    held = min(max(workers, 1), len(per_shard))
    need = total * SAMPLE_OVERHEAD + held * biggest * image_bytes * PIXEL_COPIES
    check_memory(need, f"{where}: the plan of {total:,} output samples ({biggest:,} in the largest shard)",
                 "lower augment.copies or augment.balance.target, use --limit, or set output.shard_size")
