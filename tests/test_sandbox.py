"""The sandbox for generated code: every escape attempt ends within its limit and changes nothing
outside the sandbox directory. Runs in both isolation modes where the mode is available."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from kawhi.eval.sandbox import SANDBOX_UID_BASE, namespace_isolation_available, run_sandboxed

NAMESPACE = namespace_isolation_available()
MODES = [pytest.param("namespace", marks=pytest.mark.skipif(not NAMESPACE, reason="needs root + unshare")),
         "audit"]


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


@pytest.mark.parametrize("isolation", MODES)
def test_normal_code_runs_and_returns_its_files(isolation):
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.savefig('out.png')\nprint('drawn')\n"
    result = run_sandboxed(code, collect=("*.png",), isolation=isolation, timeout_s=60)
    assert result.ok, result.stderr
    assert "drawn" in result.stdout
    assert result.files["out.png"][:4] == b"\x89PNG"


@pytest.mark.parametrize("isolation", MODES)
def test_infinite_loop_is_stopped_by_the_cpu_limit(isolation):
    result = run_sandboxed("while True:\n    pass\n", cpu_s=1, timeout_s=30, isolation=isolation)
    assert not result.timed_out  # RLIMIT_CPU (SIGXCPU, then SIGKILL) ended it, not the wall clock
    assert result.returncode != 0
    assert result.wall_s < 30


@pytest.mark.parametrize("isolation", MODES)
def test_sleeping_forever_is_stopped_by_the_wall_clock(isolation):
    result = run_sandboxed("import time\ntime.sleep(600)\n", timeout_s=1.5, isolation=isolation)
    assert result.timed_out and not result.ok
    assert result.wall_s < 30


@pytest.mark.parametrize("isolation", MODES)
def test_ten_gigabyte_allocation_fails_inside_the_child(isolation):
    result = run_sandboxed("x = bytearray(10 * 1024 ** 3)\nprint('allocated')\n", mem_mb=1024, timeout_s=60,
                           isolation=isolation)
    assert result.returncode != 0 and not result.timed_out
    assert "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


@pytest.mark.skipif(not NAMESPACE, reason="a bounded fork bomb needs a dedicated uid (root + unshare)")
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


@pytest.mark.skipif(not NAMESPACE, reason="a bounded fork bomb needs a dedicated uid (root + unshare)")
def test_fork_bomb_ends_at_the_wall_clock_and_leaves_no_process():
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_sandboxed(code, max_procs=16, timeout_s=3)
    assert result.timed_out
    assert sandbox_processes() == []


@pytest.mark.parametrize("isolation", MODES)
def test_writes_outside_the_sandbox_change_nothing(isolation, victim, tmp_path):
    stray = Path("/tmp") / f"kawhi-sandbox-escape-{uuid.uuid4().hex}"
    before = snapshot(tmp_path)
    code = (
        "import os\n"
        f"targets = [{str(victim / 'new.txt')!r}, {str(victim / 'README.md')!r}, {str(stray)!r}]\n"
        "for t in targets:\n"
        "    try:\n"
        "        open(t, 'w').write('pwned')\n"
        "        print('WROTE', t)\n"
        "    except OSError as err:\n"
        "        print('refused', t, type(err).__name__)\n"
        "open('inside.txt', 'w').write('fine')\n"
    )
    result = run_sandboxed(code, collect=("inside.txt",), isolation=isolation)
    assert result.ok, result.stderr
    assert "WROTE" not in result.stdout
    assert result.files["inside.txt"] == b"fine"  # writing inside the sandbox dir still works
    assert not stray.exists()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("isolation", MODES)
def test_deleting_project_files_changes_nothing(isolation, victim, tmp_path):
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
    result = run_sandboxed(code, isolation=isolation)
    assert result.ok, result.stderr
    assert "DELETED" not in result.stdout
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("isolation", MODES)
def test_socket_connection_never_reaches_a_local_server(isolation):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept_once():
        try:
            conn, _ = server.accept()
            accepted.append(conn)
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept_once, daemon=True)
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
        result = run_sandboxed(code, isolation=isolation, timeout_s=30)
    finally:
        server.close()  # ends the accept() of the server thread
        thread.join(timeout=10)
    assert result.ok, result.stderr
    assert "CONNECTED" not in result.stdout and "refused" in result.stdout
    assert accepted == []


def test_environment_is_minimal_and_uses_agg(monkeypatch):
    monkeypatch.setenv("KAWHI_SECRET_TOKEN", "do-not-leak")
    code = "import os, matplotlib\nprint(sorted(os.environ))\nprint(matplotlib.get_backend())\n"
    result = run_sandboxed(code)
    assert result.ok, result.stderr
    assert "KAWHI_SECRET_TOKEN" not in result.stdout
    assert result.stdout.strip().splitlines()[-1].lower() == "agg"


def test_kept_workdir_holds_the_outputs(tmp_path):
    box = tmp_path / "box"
    result = run_sandboxed("open('a.txt', 'w').write('x')\n", workdir=box, files={"in.txt": "data"})
    assert result.ok, result.stderr
    assert (box / "a.txt").read_text() == "x" and (box / "in.txt").read_text() == "data"
    assert (box / "a.txt").stat().st_uid == os.getuid()  # handed back to the caller
