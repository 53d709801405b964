"""Run untrusted generated code (ChartMimic answers) in a separate, confined subprocess.

``run_sandboxed(code)`` never executes ``code`` in the pipeline's process. The child gets its own
working directory, CPU-time / address-space / process-count / file-size limits, a wall-clock timeout
(the whole process tree is killed), no network, ``MPLBACKEND=Agg`` and a minimal environment.

Two isolation levels, chosen automatically (``isolation="auto"``):

``namespace`` (running as root with ``unshare`` permitted -- the case on the pipeline's machines):
    a launcher (this file, run as a script) unshares mount, network, PID, IPC and UTS namespaces.
    Inside, the whole mount tree is made read-only (``mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)``)
    except a bind mount of the sandbox directory; the network namespace has no interfaces but a
    down loopback; the code runs as a dedicated unprivileged uid (unique per call, so ``RLIMIT_NPROC``
    counts only the sandbox's own processes), and the namespace's PID 1 is a reaper whose death
    kills every process the code started.
``audit`` (fallback without privileges): rlimits plus a ``sys.addaudithook`` hook in the child that
    refuses socket creation, process spawning (exec/subprocess/os.system) and writes, renames or
    deletes outside the sandbox directory. This is weaker: native code (ctypes) can bypass an
    audit hook, and ``RLIMIT_NPROC`` counts all of the caller's processes.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SANDBOX_UID_BASE = 200_000  # unprivileged uids with no passwd entry, far from system and user ranges
MAIN_SCRIPT = "main.py"
_OUTPUT_TAIL = 64 * 1024
_uid_counter = 0


@dataclasses.dataclass
class SandboxResult:
    """What the confined run did. ``files``: names (relative to the sandbox dir) and bytes of the
    files matching ``collect`` at the end of the run."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    isolation: str
    workdir: Path | None
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def namespace_isolation_available() -> bool:
    """True when this process may create namespaces and switch uid (root with CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "true"],
                           capture_output=True, timeout=20) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


_NAMESPACE_OK: bool | None = None


def _next_uid() -> int:
    global _uid_counter
    _uid_counter = (_uid_counter + 1) % 64
    return SANDBOX_UID_BASE + (os.getpid() % 100_000) * 64 + _uid_counter


def run_sandboxed(code: str, workdir: Path | None = None, timeout_s: float = 60.0, cpu_s: int = 60,
                  mem_mb: int = 2048, max_procs: int = 64, max_file_mb: int = 256,
                  collect: tuple[str, ...] = (), isolation: str = "auto",
                  files: dict[str, bytes | str] | None = None) -> SandboxResult:
    """Run Python ``code`` confined; see the module docstring for what confines it.

    ``workdir``: the sandbox directory (created if missing, kept afterwards); default a fresh temporary
    directory removed after the run. ``files``: extra input files written into it first. ``collect``:
    glob patterns (relative to the sandbox dir) whose files are returned in ``SandboxResult.files``.
    ``isolation``: ``auto``, ``namespace`` or ``audit``.
    """
    global _NAMESPACE_OK
    if isolation == "auto":
        if _NAMESPACE_OK is None:
            _NAMESPACE_OK = namespace_isolation_available()
        isolation = "namespace" if _NAMESPACE_OK else "audit"
    if isolation not in ("namespace", "audit"):
        raise ValueError(f"isolation must be auto, namespace or audit, got {isolation!r}")

    own_dir = workdir is None
    box = Path(tempfile.mkdtemp(prefix="kawhi-sandbox-")) if own_dir else Path(workdir).resolve()
    box.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="kawhi-sandbox-logs-"))  # outside the box: the code cannot touch it
    try:
        (box / MAIN_SCRIPT).write_text(code)
        for name, content in (files or {}).items():
            target = box / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        uid = _next_uid() if isolation == "namespace" else os.getuid()
        if isolation == "namespace":
            _chown_tree(box, uid, uid)
        spec = {"workdir": str(box), "uid": uid, "cpu_s": int(cpu_s), "mem_mb": int(mem_mb),
                "max_procs": int(max_procs), "max_file_mb": int(max_file_mb), "isolation": isolation,
                "python": sys.executable, "needed": _python_dirs()}
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            start = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-I", "-S", str(Path(__file__).resolve()), "--child",
                                     json.dumps(spec)], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=str(box), env=_child_env(box), start_new_session=True)
            timed_out = False
            try:
                returncode: int | None = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                returncode = proc.wait()
            _kill_group(proc.pid)  # stragglers of the audit mode that outlived their parent
            if isolation == "namespace":
                _wait_until_gone(uid)
            wall = time.monotonic() - start
        if isolation == "namespace":
            _chown_tree(box, os.getuid(), os.getgid())
        collected = _collect(box, collect)
        return SandboxResult(returncode=returncode, stdout=_tail(logs / "stdout"), stderr=_tail(logs / "stderr"),
                             timed_out=timed_out, wall_s=wall, isolation=isolation,
                             workdir=None if own_dir else box, files=collected)
    finally:
        shutil.rmtree(logs, ignore_errors=True)
        if own_dir:
            shutil.rmtree(box, ignore_errors=True)


def _python_dirs() -> list[str]:
    """Directories the confined interpreter must be able to read (interpreter, stdlib, venv)."""
    dirs = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
            os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(dirs)


def _child_env(box: Path) -> dict[str, str]:
    """A minimal environment: no credentials, tokens or proxies of the pipeline reach the code."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(box), "TMPDIR": str(box), "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(box / ".mplconfig"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_until_gone(uid: int, limit_s: float = 10.0) -> None:
    """The kernel kills a PID namespace's processes when its PID 1 dies, but asynchronously: wait
    (bounded) until none of the sandbox uid's processes is left, killing any that linger."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as fh:
                    for line in fh:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                pids.append(int(entry))
                            break
            except (OSError, ValueError):
                continue
    return pids


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            try:
                os.lchown(name, uid, gid)
            except FileNotFoundError:
                pass


def _collect(box: Path, patterns: tuple[str, ...]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for pattern in patterns:
        for path in sorted(box.glob(pattern)):
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(box))] = path.read_bytes()
    return found


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - _OUTPUT_TAIL))
        return fh.read().decode("utf-8", errors="replace")


# ---- the child side: this file run as a script by the launcher (stdlib only, no kawhi import) -------

_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
_CLONE_NEWPID, _CLONE_NEWNET = 0x20000000, 0x40000000
_MS_RDONLY, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 4096, 16384, 1 << 18
_SYS_MOUNT_SETATTR, _AT_FDCWD, _AT_RECURSIVE, _MOUNT_ATTR_RDONLY = 442, -100, 0x8000, 0x1
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _OPEN_TREE_CLONE, _MOVE_MOUNT_F_EMPTY_PATH = 428, 429, 1, 0x4


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"sandbox: {what} failed: {os.strerror(err)}")


def _hidden_ancestor(path: str) -> tuple[str, str] | None:
    """(the outermost ancestor of ``path`` that others may not traverse, its child towards ``path``);
    the needed path itself is then mounted back whole under the covering tmpfs."""
    parts = Path(path).parts
    for i in range(1, len(parts)):
        ancestor = os.path.join(*parts[:i])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor, os.path.join(ancestor, parts[i])
    return None


def _expose(paths: list[str]) -> None:
    """Make ``paths`` reachable for the unprivileged uid although an ancestor is private (e.g. a Python
    installed under /root): in this mount namespace only, cover that ancestor with an empty tmpfs
    (traversable intermediate directories) and mount each needed subtree back at its old path. The
    host's files and permissions are untouched."""
    libc = _libc()
    by_ancestor: dict[str, set[str]] = {}
    for path in sorted(set(paths)):
        hidden = _hidden_ancestor(path)
        if hidden is None:
            continue
        kept = by_ancestor.setdefault(hidden[0], set())
        if not any(path == k or path.startswith(k + os.sep) for k in kept):  # inside one already kept
            kept.add(path)
    for ancestor, children in by_ancestor.items():
        clones = {}
        for child in sorted(children):
            fd = libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, child.encode(), _OPEN_TREE_CLONE | _AT_RECURSIVE)
            if fd < 0:
                _check(-1, f"open_tree on {child}")
            clones[child] = fd
        _check(libc.mount(b"tmpfs", ancestor.encode(), b"tmpfs", 0, b"mode=0755,size=1m"),
               f"covering {ancestor}")
        for child, fd in clones.items():
            os.makedirs(child, exist_ok=True) if os.path.isdir(f"/proc/self/fd/{fd}") else open(child, "a").close()
            _check(libc.syscall(_SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, child.encode(), _MOVE_MOUNT_F_EMPTY_PATH),
                   f"move_mount to {child}")
            os.close(fd)


def _read_only_except(workdir: str, needed: list[str]) -> None:
    """Private mount tree; every mount read-only except a bind mount of ``workdir``."""
    libc = _libc()
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "making / private")
    wd = workdir.encode()
    _check(libc.mount(wd, wd, None, _MS_BIND, None), f"bind-mounting {workdir}")
    _expose(needed + [workdir])
    for path, attr_set, attr_clr, flags in ((b"/", _MOUNT_ATTR_RDONLY, 0, _AT_RECURSIVE),
                                            (wd, 0, _MOUNT_ATTR_RDONLY, 0)):
        attr = _MountAttr(attr_set, attr_clr, 0, 0)
        rc = libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, path, flags, ctypes.byref(attr), ctypes.sizeof(attr))
        _check(rc, f"mount_setattr on {path.decode()}")


def _set_limits(spec: dict) -> None:
    mem = spec["mem_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (spec["cpu_s"], spec["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["max_file_mb"] * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = spec["max_procs"]
    if spec["isolation"] == "audit":  # the count includes every process of this (shared) uid
        nproc += _processes_of_uid(os.getuid())
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _processes_of_uid(uid: int) -> int:
    return len(_pids_of_uid(uid))


_AUDIT_GUARD = r'''
import os as _os, sys as _sys
_BOX = _os.path.realpath(_os.getcwd())
_DENY = {"socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo",
         "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile",
         "os.forkpty"}
_PATH_EVENTS = {"os.remove": 0, "os.rmdir": 0, "os.rename": (0, 1), "os.replace": (0, 1), "os.mkdir": 0,
                "os.chmod": 0, "os.chown": 0, "os.truncate": 0, "os.symlink": (0, 1), "os.link": (0, 1),
                "shutil.rmtree": 0, "os.utime": 0}
def _inside(p):
    if isinstance(p, int) or p is None:
        return True
    p = _os.fsdecode(p)
    return _os.path.realpath(_os.path.join(_BOX, p)) .startswith(_BOX + _os.sep) or _os.path.realpath(p) == _BOX
def _guard(event, args):
    if event in _DENY:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open" and len(args) > 1 and args[1] is not None:
        mode = args[1]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(mode, int) and mode & 0o3)
        if writes and not _inside(args[0]):
            raise PermissionError(f"sandbox: writing {args[0]!r} outside the sandbox directory")
    where = _PATH_EVENTS.get(event)
    if where is not None:
        for i in (where if isinstance(where, tuple) else (where,)):
            if i < len(args) and not _inside(args[i]):
                raise PermissionError(f"sandbox: {event} on {args[i]!r} outside the sandbox directory")
_sys.addaudithook(_guard)
del _guard
_src = open("main.py").read()
exec(compile(_src, "main.py", "exec"), {"__name__": "__main__", "__file__": "main.py"})
'''


def _exec_code(spec: dict) -> None:
    """Become the confined program (never returns)."""
    python = spec["python"]
    env = _child_env_from(spec["workdir"])
    os.chdir(spec["workdir"])
    if spec["isolation"] == "audit":
        _set_limits(spec)
        os.execve(python, [python, "-I", "-c", _AUDIT_GUARD], env)
    _set_limits(spec)
    os.setgroups([])
    os.setgid(spec["uid"])
    os.setuid(spec["uid"])
    os.execve(python, [python, "-I", MAIN_SCRIPT], env)


def _child_env_from(workdir: str) -> dict[str, str]:
    return _child_env(Path(workdir))


def _child_main(spec: dict) -> int:
    if spec["isolation"] == "audit":
        _exec_code(spec)
    libc = _libc()
    _check(libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS), "unshare")
    reaper = os.fork()  # PID 1 of the new PID namespace: when it exits, the kernel kills the rest
    if reaper:
        return _wait_status(reaper)
    try:
        _read_only_except(spec["workdir"], spec["needed"])
        code_pid = os.fork()
        if code_pid == 0:
            try:
                _exec_code(spec)
            except BaseException as err:
                print(f"sandbox: could not start the code: {err!r}", file=sys.stderr)
            os._exit(126)
        os._exit(_wait_status(code_pid))
    except BaseException as err:  # setup failed: report it, never run the code unconfined
        print(f"sandbox setup failed: {err}", file=sys.stderr)
        os._exit(125)


def _wait_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--child":
    sys.exit(_child_main(json.loads(sys.argv[2])))
