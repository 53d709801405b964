"""The sandbox for generated code (bubblewrap): every escape attempt ends within its limit, sees
nothing of the host and changes nothing outside the box. Skipped, with the reason, only where the
sandbox cannot start (no bubblewrap, namespaces not permitted)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from kawhi.eval import sandbox
from kawhi.eval.sandbox import (SANDBOX_UID_BASE, SandboxUnavailable, run_sandboxed,
                                sandbox_unavailable_reason)
from kawhi.eval.sandbox_cgroup import BoxCgroup

UNAVAILABLE = sandbox_unavailable_reason()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"sandbox unavailable: {UNAVAILABLE}")
ROOT = os.geteuid() == 0
WORKFLOW = Path(sandbox.__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its mode and content hash: any change shows up."""
    state = {}
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[str(path.relative_to(root))] = f"{oct(path.stat().st_mode)}:{digest}"
    return state


def sandbox_processes() -> list[int]:
    """Processes running under one of the sandbox's dedicated uids."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                    if line.startswith("Uid:") and int(line.split()[1]) >= SANDBOX_UID_BASE:
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.fixture
def victim(tmp_path) -> Path:
    """A world-writable directory outside the sandbox, standing for the project: only the sandbox's
    isolation (not file permissions) protects it."""
    project = tmp_path / "project"
    (project / "workflow").mkdir(parents=True)
    (project / "README.md").write_text("keep me\n")
    (project / "workflow" / "code.py").write_text("print('keep me too')\n")
    for path in [tmp_path, project, *project.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return project


def test_normal_code_runs_and_returns_its_files():
    code = ("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.savefig('out.png')\n"
            "print(open('in.txt').read())\n")
    result = run_sandboxed(code, collect=("*.png",), files={"in.txt": "input data"}, timeout_s=60)
    assert result.ok, result.stderr
    assert "input data" in result.stdout
    assert result.files["out.png"][:4] == b"\x89PNG"
    assert result.reason == ""


def test_result_channel_carries_what_the_code_writes():
    code = "import os\nos.write(int(os.environ['KAWHI_SANDBOX_CHANNEL_FD']), b'x' * 5000)\n"
    result = run_sandboxed(code, channel_bytes=1000)
    assert result.ok, result.stderr
    assert result.channel == b"x" * 1000 and result.channel_overflow


def test_infinite_loop_is_stopped_by_the_cpu_limit():
    result = run_sandboxed("while True:\n    pass\n", cpu_s=1, timeout_s=30)
    assert not result.timed_out  # RLIMIT_CPU (SIGXCPU, then SIGKILL) ended it, not the wall clock
    assert result.returncode != 0 and "CPU time" in result.reason
    assert result.wall_s < 30


def test_sleeping_forever_is_stopped_by_the_wall_clock():
    result = run_sandboxed("import time\ntime.sleep(600)\n", timeout_s=1.5)
    assert result.timed_out and not result.ok and result.returncode is None
    assert result.reason.startswith("timeout")
    assert result.wall_s < 30
    assert sandbox_processes() == []


def test_ten_gigabyte_allocation_fails_inside_the_child():
    result = run_sandboxed("x = bytearray(10 * 1024 ** 3)\nprint('allocated')\n", mem_mb=1024, timeout_s=60)
    assert result.returncode != 0 and not result.timed_out
    assert "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


@pytest.mark.skipif(not ROOT or BoxCgroup.create(1 << 30, 8) is None,
                    reason=f"the aggregate memory limit needs a cgroup (root, writable /sys/fs/cgroup): "
                           f"{BoxCgroup.unavailable or 'not root'}")
def test_processes_share_one_memory_limit():
    """Four processes of 300 MB each, every one under the per-process limit, cannot all hold their
    memory against a 512 MB limit for the whole sandbox."""
    code = (
        "import os, time\n"
        "fd = int(os.environ['KAWHI_SANDBOX_CHANNEL_FD'])\n"
        "for _ in range(4):\n"
        "    if os.fork() == 0:\n"
        "        block = b'\\x01' * (300 * 1024 * 1024)\n"
        "        os.write(fd, b'held\\n')\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        "for _ in range(4):\n"
        "    os.wait()\n"
    )
    result = run_sandboxed(code, mem_mb=512, disk_mb=16, timeout_s=60)
    assert result.channel.count(b"held") < 4
    assert "out of memory" in result.reason


def test_process_count_is_limited_and_every_child_dies():
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 1000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print('forked', n, flush=True)\n"
    )
    result = run_sandboxed(code, max_procs=16, timeout_s=60)
    assert result.ok, result.stderr
    assert int(result.stdout.split()[-1]) < 16
    assert sandbox_processes() == []  # the sleeping children died with the PID namespace


def test_fork_bomb_ends_at_the_wall_clock_and_leaves_no_process():
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_sandboxed(code, max_procs=16, timeout_s=3)
    assert result.timed_out
    assert sandbox_processes() == []


def test_disk_flood_stops_at_the_box_size():
    code = (
        "import os\n"
        "written = 0\n"
        "try:\n"
        "    for i in range(512):\n"
        "        with open(f'f{i % 8}.bin', 'ab') as fh:\n"
        "            fh.write(b'\\x01' * (1024 * 1024))\n"
        "        written += 1\n"
        "except OSError as err:\n"
        "    print('stopped', err.strerror)\n"
        "print('written_mb', written)\n"
    )
    result = run_sandboxed(code, disk_mb=32, max_file_mb=256, timeout_s=60)
    assert result.ok, result.stderr
    assert "No space left" in result.stdout
    assert int(result.stdout.split()[-1]) <= 32


def test_inode_flood_stops_at_the_inode_limit():
    code = (
        "import os\n"
        "made = 0\n"
        "try:\n"
        "    while made < 50000:\n"
        "        open(f'e{made}', 'w').close()\n"
        "        made += 1\n"
        "except OSError as err:\n"
        "    print('stopped', err.strerror)\n"
        "print('files', made)\n"
    )
    result = run_sandboxed(code, max_inodes=500, timeout_s=60)
    assert result.ok, result.stderr
    assert "No space left" in result.stdout
    assert int(result.stdout.split()[-1]) < 500


def test_proc_shows_only_the_sandbox_processes(tmp_path):
    """The host's processes (their command lines name the scorer's files) are invisible."""
    marker = f"kawhi-secret-{uuid.uuid4().hex}"
    host = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    code = (
        "import os\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "lines = []\n"
        "for p in pids:\n"
        "    try:\n"
        "        lines.append(open(f'/proc/{p}/cmdline', 'rb').read().decode(errors='replace'))\n"
        "    except OSError:\n"
        "        pass\n"
        "print(len(pids), '|'.join(lines))\n"
    )
    try:
        result = run_sandboxed(code)
    finally:
        host.kill()
        host.wait()
    assert result.ok, result.stderr
    assert marker not in result.stdout
    assert int(result.stdout.split()[0]) <= 3  # PID 1, the code, at most setpriv's leftover


def test_host_files_are_invisible(victim):
    """Nothing but /usr, the interpreter's directories and the box: no /etc, project or home."""
    paths = ["/etc/passwd", "/etc/hostname", str(victim / "README.md"), __file__,
             str(WORKFLOW / "kawhi" / "config.py"), "/home", "/tmp", "/var", "/sys"]
    code = (
        "import os\n"
        f"for path in {paths!r}:\n"
        "    print('VISIBLE' if os.path.exists(path) else 'absent', path)\n"
    )
    result = run_sandboxed(code)
    assert result.ok, result.stderr
    assert result.stdout.split().count("absent") == len(paths), result.stdout


def test_writes_outside_the_sandbox_change_nothing(victim, tmp_path):
    stray = Path("/tmp") / f"kawhi-sandbox-escape-{uuid.uuid4().hex}"
    before = snapshot(tmp_path)
    code = (
        "import os\n"
        f"targets = [{str(victim / 'new.txt')!r}, {str(victim / 'README.md')!r}, {str(stray)!r},\n"
        f"           {sys.prefix + '/pwned.txt'!r}, '/usr/pwned.txt', '/pwned.txt', '/dev/shm/pwned']\n"
        "for t in targets:\n"
        "    try:\n"
        "        open(t, 'w').write('pwned')\n"
        "        print('WROTE', t)\n"
        "    except OSError as err:\n"
        "        print('refused', t, type(err).__name__)\n"
        "open('inside.txt', 'w').write('fine')\n"
    )
    result = run_sandboxed(code, collect=("inside.txt",))
    assert result.ok, result.stderr
    assert "WROTE" not in result.stdout
    assert result.files["inside.txt"] == b"fine"  # writing inside the box still works
    assert not stray.exists() and not Path(sys.prefix, "pwned.txt").exists()
    assert snapshot(tmp_path) == before


def test_deleting_project_files_changes_nothing(victim, tmp_path):
    before = snapshot(tmp_path)
    code = (
        "import os, shutil\n"
        f"project = {str(victim)!r}\n"
        "for action in (lambda: os.remove(os.path.join(project, 'README.md')),\n"
        "               lambda: os.rename(os.path.join(project, 'workflow'), os.path.join(project, 'gone')),\n"
        "               lambda: shutil.rmtree(project)):\n"
        "    try:\n"
        "        action()\n"
        "        print('DELETED')\n"
        "    except OSError as err:\n"
        "        print('refused', type(err).__name__)\n"
    )
    result = run_sandboxed(code)
    assert result.ok, result.stderr
    assert "DELETED" not in result.stdout
    assert snapshot(tmp_path) == before


def test_socket_connection_never_reaches_a_local_server():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    done = threading.Event()

    def accept_until_done():
        while not done.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept_until_done, daemon=True)
    thread.start()
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "    print('CONNECTED')\n"
        "except OSError as err:\n"
        "    print('refused', type(err).__name__, err)\n"
    )
    try:
        result = run_sandboxed(code, timeout_s=30)
    finally:
        done.set()
        thread.join(timeout=10)
        server.close()
    assert result.ok, result.stderr
    assert "CONNECTED" not in result.stdout and "refused" in result.stdout
    assert accepted == []


def test_host_unix_sockets_are_unreachable(tmp_path):
    """A 0777 filesystem socket and an abstract socket, both listening on the host."""
    folder = tmp_path / "sockets"
    folder.mkdir()
    folder.chmod(0o777)
    tmp_path.chmod(0o777)
    path = folder / "service.sock"
    abstract = f"\0kawhi-test-{uuid.uuid4().hex}"
    servers = []
    for address in (str(path), abstract):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        server.listen(1)
        servers.append(server)
    path.chmod(0o777)
    code = (
        "import socket\n"
        f"for address in ({str(path)!r}, {abstract!r}):\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    try:\n"
        "        s.connect(address)\n"
        "        print('CONNECTED', repr(address))\n"
        "    except OSError as err:\n"
        "        print('refused', type(err).__name__)\n"
    )
    try:
        result = run_sandboxed(code)
    finally:
        for server in servers:
            server.close()
    assert result.ok, result.stderr
    assert "CONNECTED" not in result.stdout and result.stdout.count("refused") == 2


def test_the_code_cannot_stop_pid_1():
    """Signals to the sandbox's PID 1 are dropped: the run ends normally and its files come back."""
    code = ("import os, signal\n"
            "for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):\n"
            "    try:\n"
            "        os.kill(1, sig)\n"
            "    except OSError as err:\n"
            "        print('refused', err)\n"
            "open('kept.txt', 'w').write('still here')\n")
    result = run_sandboxed(code, collect=("kept.txt",))
    assert result.ok, result.stderr
    assert result.files == {"kept.txt": b"still here"}


def test_environment_is_minimal_and_uses_agg(monkeypatch):
    monkeypatch.setenv("KAWHI_SECRET_TOKEN", "do-not-leak")
    code = "import os, matplotlib\nprint(sorted(os.environ))\nprint(matplotlib.get_backend())\n"
    result = run_sandboxed(code)
    assert result.ok, result.stderr
    assert "KAWHI_SECRET_TOKEN" not in result.stdout
    assert result.stdout.strip().splitlines()[-1].lower() == "agg"


def test_missing_bubblewrap_is_a_clear_error(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, **kw: None if name == "bwrap" else real_which(name, **kw))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        run_sandboxed("print(1)")


@pytest.mark.skipif(not ROOT or not os.access("/usr/bin/python3", os.X_OK),
                    reason="runs the sandbox as an unprivileged user (needs root to switch, /usr/bin/python3)")
def test_unprivileged_caller_gets_a_user_namespace_sandbox():
    """The cluster-node case: no root, so bubblewrap makes a user namespace and there is no cgroup;
    the namespaces, the box limits and the process limit still hold."""
    uid = SANDBOX_UID_BASE - 1
    code = ("import os\n"
            "n = 0\n"
            "try:\n"
            "    while n < 100:\n"
            "        open(f'f{n}', 'w').close()\n"
            "        n += 1\n"
            "except OSError:\n"
            "    pass\n"
            "print(sorted(p for p in os.listdir('/proc') if p.isdigit()), os.path.exists('/etc/passwd'), n)\n")
    caller = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(WORKFLOW)!r})\n"
        "from kawhi.eval.sandbox import run_sandboxed\n"
        f"r = run_sandboxed({code!r}, max_inodes=20)\n"
        "print(json.dumps({'rc': r.returncode, 'layers': r.layers, 'stdout': r.stdout, 'stderr': r.stderr}))\n"
    )
    done = subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups",
                           "/usr/bin/python3", "-I", "-c", caller], capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["rc"] == 0, run
    assert run["layers"]["identity"] == "uid 0 of a user namespace" and run["layers"]["cgroup"] == "none (not root)"
    pids, passwd, files = run["stdout"].rsplit(" ", 2)
    assert len(eval(pids)) <= 3 and passwd == "False" and int(files) < 20
