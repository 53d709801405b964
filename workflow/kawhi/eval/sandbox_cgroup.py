"""One memory + pids cgroup per sandbox run: the aggregate limits over all of the code's processes.

Created by root only, v2 (unified hierarchy) or v1 (separate ``memory`` and ``pids`` hierarchies).
Under v2 a cgroup can hand controllers to a child only while it holds no process itself, so the
sandbox's cgroup goes under the caller's cgroup when that one delegates ``memory`` and ``pids``, else
under the root cgroup. ``BoxCgroup.create`` returns None (and says why in ``unavailable``) where none
of this is possible: not root, a read-only /sys/fs/cgroup (most containers), controllers missing.
The tmpfs box is charged to the memory cgroup too (shared memory is charged to the cgroup of the
process that writes it), and so is the kernel memory of its inodes.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count()


class BoxCgroup:
    """The cgroup directories of one run (one under v2, two under v1)."""

    unavailable: str = ""

    def __init__(self, dirs: list[Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @property
    def procs_files(self) -> list[Path]:
        """Where a process writes its own pid to join (children inherit the cgroup)."""
        return [d / "cgroup.procs" for d in self.dirs]

    @classmethod
    def create(cls, memory_bytes: int, pids: int) -> BoxCgroup | None:
        if os.geteuid() != 0:
            cls.unavailable = "not root"
            return None
        name = f"kawhi-sandbox-{os.getpid()}-{next(_counter)}"
        try:
            if (CGROUP_ROOT / "cgroup.controllers").exists():
                return cls._create_v2(name, memory_bytes, pids)
            return cls._create_v1(name, memory_bytes, pids)
        except OSError as err:
            cls.unavailable = f"cannot create a cgroup: {err}"
            return None

    @classmethod
    def _create_v2(cls, name: str, memory_bytes: int, pids: int) -> BoxCgroup:
        own = CGROUP_ROOT / _own_path("")
        parent = own if {"memory", "pids"} <= set(_read(own / "cgroup.subtree_control").split()) else CGROUP_ROOT
        box = parent / name
        box.mkdir()
        cgroup = cls([box], 2)
        try:
            (box / "memory.max").write_text(str(memory_bytes))
            if (box / "memory.swap.max").exists():
                (box / "memory.swap.max").write_text("0")
            (box / "pids.max").write_text(str(pids))
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    @classmethod
    def _create_v1(cls, name: str, memory_bytes: int, pids: int) -> BoxCgroup:
        dirs = []
        cgroup = cls(dirs, 1)
        try:
            for controller in ("memory", "pids"):
                box = CGROUP_ROOT / controller / _own_path(controller) / name
                box.mkdir()
                dirs.append(box)
            memory = dirs[0]
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
                (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            (dirs[1] / "pids.max").write_text(str(pids))
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def oom_kills(self) -> int:
        """Processes the kernel killed for exceeding the memory limit."""
        events = self.dirs[0] / ("memory.events" if self.version == 2 else "memory.oom_control")
        for line in _read(events).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def processes(self) -> list[int]:
        return sorted({int(p) for f in self.procs_files for p in _read(f).split()})

    def remove(self, wait_s: float = 10.0) -> None:
        """Remove the cgroup once its processes are gone (bounded wait)."""
        deadline = time.monotonic() + wait_s
        for box in self.dirs:
            while True:
                try:
                    box.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


def _own_path(controller: str) -> str:
    """This process's cgroup path in the hierarchy of ``controller`` ("" = the v2 hierarchy)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (controller in controllers.split(",")) if controller else controllers == "":
            return path.lstrip("/")
    raise OSError(f"no {controller or 'v2'} entry in /proc/self/cgroup")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
