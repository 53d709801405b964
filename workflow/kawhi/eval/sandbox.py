"""Run untrusted generated code (ChartMimic answers) in bubblewrap, confined, never in this process.

``run_sandboxed(code)`` starts ``bwrap`` (Debian/Ubuntu package ``bubblewrap``; a clear
:class:`SandboxUnavailable` without it). What each layer holds (docs/eval.md says how to check each):

- **Namespaces (bubblewrap)**: new PID namespace with its own ``/proc`` (only the sandbox's processes),
  network (a loopback only: no host TCP, no abstract unix socket), IPC, UTS, cgroup, and mount namespace;
  a user namespace too when the caller is not root.
- **Files**: an empty root; read-only: ``/usr`` (system libraries, ``sh``, ``mount``, ``setpriv``),
  the ``/bin``, ``/lib*`` links, the interpreter's prefix(es) and its site-packages directories,
  wherever they live (``/tmp`` included); a minimal read-only ``/dev``. No ``/etc``, ``/home``,
  ``/tmp``, project, data or results directory, and no filesystem socket of the host.
- **The box** (``/box``, the working directory): a tmpfs of ``disk_mb`` and ``max_inodes``, mounted
  inside by :mod:`kawhi.eval.sandbox_init` (PID 1 of the sandbox), gone with the sandbox.
- **Identity**: as root, a dedicated host uid per run (``SANDBOX_UID_BASE`` + ...), no groups; else
  uid 0 of a user namespace. Either way no capability, an empty bounding set and ``no_new_privs``.
- **Limits**: per process RLIMIT_CPU, RLIMIT_AS (``mem_mb``, so one huge allocation is a
  ``MemoryError``), RLIMIT_FSIZE, RLIMIT_NOFILE, no core; RLIMIT_NPROC (``max_procs``) counts only the
  sandbox's processes (its uid is its own); as root, a memory + pids cgroup bounds all processes
  together (:mod:`kawhi.eval.sandbox_cgroup`); the wall clock (``timeout_s``) kills the whole namespace.
- **Outputs**: stdout/stderr (last 64 KiB each) and a result channel (a pipe, descriptor in the code's
  ``$KAWHI_SANDBOX_CHANNEL_FD``, first ``channel_bytes`` kept) come through pipes; files named by
  ``collect`` are copied out by PID 1 after every process of the code is dead. The caller must
  validate all of them: whatever the code's process writes, the code could have written.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kawhi.eval.sandbox_cgroup import BoxCgroup

SANDBOX_UID_BASE = 200_000  # unprivileged host uids with no passwd entry, far from system and user ranges
BOX = "/box"
MAIN_SCRIPT = "main.py"
CHANNEL_FD_ENV = "KAWHI_SANDBOX_CHANNEL_FD"
INSTALL_HINT = ("running generated code needs bubblewrap (the `bwrap` command): `apt-get install bubblewrap` "
                "(Debian/Ubuntu), `dnf install bubblewrap` (RHEL/Fedora); see docs/eval.md, 'The sandbox'")
_OUTPUT_TAIL = 64 * 1024
_INIT_SOURCE = (Path(__file__).with_name("sandbox_init.py")).read_text()
# The trusted PID 1 needs these (inside its namespaces) to mount the box, switch uid, kill and collect.
_INIT_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE")
_uid_counter = 0


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here at all (no bubblewrap, namespaces not permitted): not the code's fault."""


@dataclasses.dataclass
class SandboxResult:
    """What the confined run did. ``returncode``: the code's exit status (negative: killed by that
    signal; None: timed out). ``reason``: why it did not succeed, in words ("" when it did).
    ``channel``: what the code wrote to the result channel. ``files``: the collected files.
    ``layers``: what confined this run (bwrap version, identity, cgroup)."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    reason: str
    channel: bytes = b""
    channel_overflow: bool = False
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    layers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_sandboxed(code: str, timeout_s: float = 60.0, cpu_s: int = 60, mem_mb: int = 2048, max_procs: int = 16,
                  max_file_mb: int = 64, disk_mb: int = 256, max_inodes: int = 4096, collect: tuple[str, ...] = (),
                  files: dict[str, bytes | str] | None = None, channel_bytes: int = 16 * 1024 * 1024) -> SandboxResult:
    """Run Python ``code`` (as ``/box/main.py``) confined; see the module docstring for how.

    ``files``: extra input files written into the box first. ``collect``: glob patterns (relative to
    the box) whose regular files come back in ``SandboxResult.files`` (``disk_mb`` at most in all).
    Raises :class:`SandboxUnavailable` when the sandbox itself cannot start.
    """
    bwrap = shutil.which("bwrap")
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    if bwrap is None or setpriv is None:
        raise SandboxUnavailable(INSTALL_HINT if bwrap is None else "the sandbox needs `setpriv` (util-linux)")
    root = os.geteuid() == 0
    code_uid = _next_uid() if root else None
    disk_bytes = disk_mb * 1024 * 1024
    # The cgroup bounds the code's memory plus the box (tmpfs pages are charged to it) plus PID 1.
    cgroup = BoxCgroup.create((mem_mb + disk_mb + 64) * 1024 * 1024, max_procs + 4)
    out = Path(tempfile.mkdtemp(prefix="kawhi-sandbox-"))  # on the host, never mounted in the sandbox
    out_fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    channel_r, channel_w = os.pipe()
    info_r, info_w = os.pipe()
    spec = {"box": BOX, "disk_bytes": disk_bytes, "inodes": int(max_inodes), "code_uid": code_uid,
            "setpriv": setpriv, "out_fd": out_fd, "channel_fd": channel_w, "collect": list(collect),
            "collect_bytes": disk_bytes, "env": _code_env(channel_w),
            "argv": [sys.executable, "-s", MAIN_SCRIPT],
            "rlimits": {"RLIMIT_CPU": [cpu_s, cpu_s + 1], "RLIMIT_AS": [mem_mb * 1024 * 1024] * 2,
                        "RLIMIT_FSIZE": [max_file_mb * 1024 * 1024] * 2, "RLIMIT_CORE": [0, 0],
                        "RLIMIT_NOFILE": [256, 256],
                        # in a user namespace PID 1 runs under the code's uid and counts too
                        "RLIMIT_NPROC": [max_procs + (0 if root else 1)] * 2}}
    inputs = {MAIN_SCRIPT: code, **(files or {})}
    argv = [*_join_cgroup(cgroup), bwrap, *_bwrap_args(root, info_w),
            sys.executable, "-I", "-S", "-c", _INIT_SOURCE, json.dumps(spec)]
    layers = {"bwrap": bwrap, "identity": f"host uid {code_uid}" if root else "uid 0 of a user namespace",
              "cgroup": f"v{cgroup.version}" if cgroup else f"none ({BoxCgroup.unavailable})"}
    try:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(out_fd, channel_w, info_w), start_new_session=True,
                                env={"PATH": "/usr/bin:/bin"})
        for fd in (out_fd, channel_w, info_w):
            os.close(fd)
        stdout, stderr = _Reader(proc.stdout, tail=True), _Reader(proc.stderr, tail=True)
        channel, info = _Reader(os.fdopen(channel_r, "rb"), limit=channel_bytes), _Reader(os.fdopen(info_r, "rb"))
        _send_inputs(proc, inputs)
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc, info)
        wall = time.monotonic() - start
        for reader in (stdout, stderr, channel, info):
            reader.join()
        status = _read_json(out / "status.json")
        if not status.get("started"):
            raise SandboxUnavailable(f"the sandbox did not start ({layers['identity']}): "
                                     f"{stderr.text().strip()[-2000:] or 'no message'}")
        returncode = status.get("exit") if status.get("finished") else None
        oom = cgroup.oom_kills() if cgroup else 0
        collected = {name: base64.b64decode(data) for name, data in _read_json(out / "collected.json").items()}
        return SandboxResult(returncode=returncode, stdout=stdout.text(), stderr=stderr.text(),
                             timed_out=timed_out, wall_s=wall,
                             reason=_reason(returncode, timed_out, timeout_s, oom, stderr.text()),
                             channel=channel.data(), channel_overflow=channel.overflow, files=collected,
                             layers=layers)
    finally:
        if cgroup is not None:
            cgroup.remove()
        shutil.rmtree(out, ignore_errors=True)


def sandbox_unavailable_reason() -> str | None:
    """Why the sandbox cannot run here (None when it can); probed once per process."""
    global _UNAVAILABLE
    if _UNAVAILABLE is None:
        try:
            result = run_sandboxed("print('ok')", timeout_s=60)
            _UNAVAILABLE = "" if result.ok else f"a trivial program failed: {result.reason}: {result.stderr[-500:]}"
        except SandboxUnavailable as err:
            _UNAVAILABLE = str(err)
    return _UNAVAILABLE or None


_UNAVAILABLE: str | None = None


# ---- the bubblewrap command line ------------------------------------------------------------------

def _bwrap_args(root: bool, info_fd: int) -> list[str]:
    args = ["--die-with-parent", "--new-session", "--as-pid-1", "--info-fd", str(info_fd),
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "kawhi-sandbox"]
    if not root:  # unprivileged: bubblewrap needs a user namespace; map the caller to uid 0 inside
        args += ["--unshare-user", "--uid", "0", "--gid", "0"]
    args += ["--proc", "/proc", "--dev", "/dev", *_system_dirs(), *_python_dirs(),
             "--perms", "0755", "--dir", BOX, "--remount-ro", "/dev", "--remount-ro", "/",
             "--clearenv", "--chdir", "/", "--cap-drop", "ALL"]
    for cap in _INIT_CAPS:
        args += ["--cap-add", cap]
    return args


def _system_dirs() -> list[str]:
    """/usr read-only; /bin, /sbin, /lib* as on the host (links on merged-/usr systems)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def exposed_python_dirs() -> list[str]:
    """The interpreter's prefixes and its site-packages directories (never PYTHONPATH's project
    directories): what the confined interpreter must read, at the paths this process uses."""
    candidates = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))]
    candidates += [p for p in sys.path if {"site-packages", "dist-packages"} & set(Path(p).parts)]
    found: set[str] = set()
    for path in candidates:
        if path and os.path.isdir(path):
            found.update({os.path.abspath(path), os.path.realpath(path)})
    outermost = [p for p in sorted(found) if not any(_inside(p, q) for q in found if q != p)]
    return [p for p in outermost if not _inside(p, "/usr")]


def _python_dirs() -> list[str]:
    args, made = [], set()
    for path in exposed_python_dirs():
        for ancestor in list(reversed(Path(path).parents))[1:]:  # bwrap would make them 0700
            if str(ancestor) not in made:
                made.add(str(ancestor))
                args += ["--perms", "0755", "--dir", str(ancestor)]
        args += ["--ro-bind", path, path]
    return args


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _code_env(channel_fd: int) -> dict[str, str]:
    """A minimal environment: no credentials, tokens or proxies of the pipeline reach the code."""
    site_dirs = [p for p in sys.path if {"site-packages", "dist-packages"} & set(Path(p).parts)]
    return {"PATH": "/usr/bin:/bin", "HOME": BOX, "TMPDIR": BOX, "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{BOX}/.mplconfig", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join(site_dirs), CHANNEL_FD_ENV: str(channel_fd),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _join_cgroup(cgroup: BoxCgroup | None) -> list[str]:
    """A shell that moves itself into the cgroup, then becomes bwrap (everything after inherits it)."""
    if cgroup is None:
        return []
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *map(str, cgroup.procs_files), "--"]


def _next_uid() -> int:
    global _uid_counter
    _uid_counter = (_uid_counter + 1) % 64
    return SANDBOX_UID_BASE + (os.getpid() % 100_000) * 64 + _uid_counter


# ---- running it -------------------------------------------------------------------------------------

class _Reader(threading.Thread):
    """Drains one pipe: keeps its tail (``tail``) or its first ``limit`` bytes."""

    def __init__(self, stream, tail: bool = False, limit: int = 1024 * 1024) -> None:
        super().__init__(daemon=True)
        self.stream, self.tail, self.limit = stream, tail, _OUTPUT_TAIL if tail else limit
        self.buffer, self.overflow = bytearray(), False
        self.start()

    def run(self) -> None:
        with self.stream:
            while chunk := self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536):
                self.buffer += chunk
                if len(self.buffer) > self.limit:
                    self.overflow = True
                    self.buffer = self.buffer[-self.limit:] if self.tail else self.buffer[:self.limit]

    def data(self) -> bytes:
        return bytes(self.buffer)

    def text(self) -> str:
        return self.buffer.decode("utf-8", errors="replace")


def _send_inputs(proc: subprocess.Popen, inputs: dict[str, bytes | str]) -> None:
    payload = {name: base64.b64encode(content.encode() if isinstance(content, str) else content).decode()
               for name, content in inputs.items()}
    try:
        proc.stdin.write(json.dumps(payload).encode())
        proc.stdin.close()
    except BrokenPipeError:  # the sandbox died during setup: the status says so
        pass


def _kill(proc: subprocess.Popen, info: _Reader) -> None:
    """Kill the sandbox's PID 1 (the kernel then kills its whole namespace), else bwrap's group."""
    try:
        init_pid = int(json.loads(info.data() or b"{}").get("child-pid", 0))
    except ValueError:
        init_pid = 0
    if init_pid:
        try:
            os.kill(init_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _reason(returncode: int | None, timed_out: bool, timeout_s: float, oom_kills: int, stderr: str) -> str:
    if timed_out:
        return f"timeout: still running after {timeout_s:g} s"
    if oom_kills:
        return f"out of memory: the sandbox's processes together exceeded its memory limit ({oom_kills} killed)"
    if returncode == 0:
        return ""
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        limit = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (CPU time or memory limit)"}.get(name, "")
        return f"killed by {name}{limit}"
    last = stderr.strip().splitlines()[-1:] or [f"exit status {returncode}"]
    return last[0][:500]
