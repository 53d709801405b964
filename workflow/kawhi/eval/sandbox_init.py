"""PID 1 of a sandbox: the trusted side inside bubblewrap (see :mod:`kawhi.eval.sandbox`).

Run by bubblewrap as ``python -I -S -c <this file's text> <spec JSON>``, stdlib only, before any
untrusted code exists. In order it:

1. mounts the box, ``/box``, as a tmpfs of ``disk_bytes`` and ``inodes`` (bubblewrap's own ``--tmpfs``
   cannot cap inodes) and writes the input files (a JSON object name -> base64 on stdin) into it;
2. starts the code (``setpriv``: a dedicated host uid when the caller is root, else no capabilities
   in the user namespace; an empty bounding set; ``no_new_privs``) with the rlimits of the spec;
3. when the code's process exits, kills every other process of the namespace and reaps them (it is
   PID 1, so every orphan is its child), so nothing runs while it reads the box;
4. copies the regular files that match ``collect`` to the caller's directory (an inherited descriptor,
   closed in the code's process) and writes ``status.json`` there.

Signals: PID 1 of a PID namespace receives from inside only the signals it has a handler for, and
this process keeps every disposition at its default, so the code cannot stop it.
"""

import base64
import glob
import json
import os
import resource
import signal
import stat
import subprocess
import sys


def write_out(out_fd, name, data):
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=out_fd)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def mount_box(spec):
    owner = spec["code_uid"] if spec["code_uid"] is not None else 0
    options = f"size={spec['disk_bytes']},nr_inodes={spec['inodes']},mode=0700,uid={owner},gid={owner}"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "kawhi-box", spec["box"]],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"mounting the box tmpfs failed: {done.stderr.strip()}")
    for name, encoded in json.load(sys.stdin).items():
        if os.path.isabs(name) or ".." in name.split("/"):
            raise ValueError(f"input file name {name!r} must stay inside the box")
        path = os.path.join(spec["box"], name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(encoded))
    for folder, dirs, names in os.walk(spec["box"]):  # the box holds only the inputs yet
        for path in [folder] + [os.path.join(folder, n) for n in dirs + names]:
            os.lchown(path, owner, owner)


def start_code(spec):
    """Fork the untrusted program; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.close(spec["out_fd"])
        os.chdir(spec["box"])
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.set_inheritable(spec["channel_fd"], True)
        for name, (soft, hard) in spec["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        drop = ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        if spec["code_uid"] is not None:
            drop = ["--reuid", str(spec["code_uid"]), "--regid", str(spec["code_uid"]), "--clear-groups"] + drop
        os.execve(spec["setpriv"], ["setpriv", *drop, "--", *spec["argv"]], spec["env"])
    except BaseException as err:
        os.write(2, f"sandbox: could not start the code: {err!r}\n".encode())
    os._exit(126)


def end_everything():
    """SIGKILL every other process of the namespace, then reap until none is left."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def collect(spec):
    """{name: base64} of the regular files matching ``collect`` (never following a symlink)."""
    found, total = {}, 0
    for pattern in spec["collect"]:
        for path in sorted(glob.glob(os.path.join(spec["box"], pattern))):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as fh:
                info = os.fstat(fh.fileno())
                if not stat.S_ISREG(info.st_mode) or total + info.st_size > spec["collect_bytes"]:
                    continue
                data = fh.read(info.st_size)
            total += len(data)
            found[os.path.relpath(path, spec["box"])] = base64.b64encode(data).decode()
    return found


def main(spec):
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    out_fd = spec["out_fd"]
    os.set_inheritable(out_fd, False)
    try:
        mount_box(spec)
        write_out(out_fd, "status.json", json.dumps({"started": True}).encode())
        code_pid = start_code(spec)
    except BaseException as err:
        os.write(2, f"sandbox setup failed: {err}\n".encode())
        return 125
    os.close(spec["channel_fd"])
    _, status = os.waitpid(code_pid, 0)
    end_everything()
    write_out(out_fd, "collected.json", json.dumps(collect(spec)).encode())
    code = os.waitstatus_to_exitcode(status)
    write_out(out_fd, "status.json", json.dumps({"started": True, "finished": True, "exit": code}).encode())
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
