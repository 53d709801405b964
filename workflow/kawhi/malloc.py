"""glibc malloc thresholds for the workflow's jobs.

A CPU training or evaluation step allocates and frees many tensors of a few kB to tens of MB. With glibc's
defaults, freed memory at the top of the heap goes back to the kernel (trim) and blocks above an adaptive
threshold are mapped afresh, so the next step pays page faults to get the memory back: about a tenth of a
tiny-grid job's CPU time is system time. Two fixed thresholds keep that memory in the process. Measured on the
embedded grid's GRPO+KAWHI job, two side by side as `make run` runs them (benchmarks/malloc_tunables.py): system
time 3.0 -> 1.8 s, wall time 2 % less (one job alone: no gain, the saved system time reappears as user time),
byte-identical weights; an evaluation job ~5 % less (same samples); ~0.1 GB more resident memory per job.

glibc reads ``GLIBC_TUNABLES`` when a process starts, so the Snakefile sets it in the environment every job
inherits (local jobs; a Slurm job inherits sbatch's environment and parses the Snakefile again); a ``kawhi``
command run by hand can be given the same variable. Other C libraries ignore it.
"""

from __future__ import annotations

from collections.abc import MutableMapping

MMAP_THRESHOLD = 64 * 2**20  # blocks below this come from the heap (glibc's adaptive default tops out at 32 MB)
TRIM_THRESHOLD = 256 * 2**20  # free memory kept at the heap's top before it is returned to the kernel
MALLOC_TUNABLES = {"glibc.malloc.mmap_threshold": MMAP_THRESHOLD, "glibc.malloc.trim_threshold": TRIM_THRESHOLD}


def set_malloc_tunables(environ: MutableMapping[str, str]) -> str:
    """Add the two thresholds to ``environ["GLIBC_TUNABLES"]`` and return its new value. Tunables already set
    there are kept, a threshold given by the user included; calling it again changes nothing."""
    current = environ.get("GLIBC_TUNABLES", "")
    items = [item for item in current.split(":") if item]
    given = {item.split("=", 1)[0] for item in items}
    items += [f"{name}={value}" for name, value in MALLOC_TUNABLES.items() if name not in given]
    environ["GLIBC_TUNABLES"] = ":".join(items)
    return environ["GLIBC_TUNABLES"]
