"""A real single-node Slurm cluster on this machine, for the `slurm` tests.

Debian's slurm-wlm and munge (installed through apt when missing), a generated slurm.conf for this host,
then munged, slurmctld and slurmd started as root. Everything Slurm writes lives in one state directory;
clients find the cluster through SLURM_CONF. There is no slurmdbd, so job records come from Slurm's own
job-completion log (JobCompType=jobcomp/filetxt) and `scontrol show job` (kept for MinJobAge seconds),
and Snakemake's Slurm executor polls with `status_command: squeue`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

APT_PACKAGES = ("slurm-wlm", "munge")
PARTITION = "debug"


class ClusterUnavailable(RuntimeError):
    """Slurm cannot be brought up here (no root, no apt); the tests skip with this reason."""


def ensure_installed() -> None:
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("slurm-wlm is not installed and installing it needs root")
    if not shutil.which("apt-get"):
        raise ClusterUnavailable("slurm-wlm is not installed and apt-get is missing")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *APT_PACKAGES]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")


def _node_line() -> str:
    """This host's hardware as slurmd itself reports it (`slurmd -C`), first line."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0]


def slurm_conf(state: Path, node_line: str, cluster_name: str = "kawhi-test") -> str:
    node_name = node_line.split()[0].split("=", 1)[1]
    return f"""\
ClusterName={cluster_name}
SlurmctldHost={node_name}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
JobCompType=jobcomp/filetxt
JobCompLoc={state}/jobcomp.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
{node_line} State=UNKNOWN
PartitionName={PARTITION} Nodes={node_name} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


CGROUP_CONF = "CgroupPlugin=cgroup/v1\nIgnoreSystemd=yes\n"


SYSTEM_CONF_DIR = Path("/etc/slurm")


@dataclass
class SingleNodeSlurm:
    """The cluster's config goes to /etc/slurm (any existing files are kept aside and put back on stop):
    `srun` inside a batch job looks for the config there, whatever SLURM_CONF the submitter had."""

    state: Path
    pids: dict[str, int] = field(default_factory=dict)
    conf_dir: Path = SYSTEM_CONF_DIR
    _saved: dict[Path, bytes | None] = field(default_factory=dict)

    @property
    def conf_path(self) -> Path:
        return self.conf_dir / "slurm.conf"

    def _install(self, name: str, text: str) -> None:
        path = self.conf_dir / name
        if path not in self._saved:
            self._saved[path] = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _restore(self) -> None:
        for path, content in self._saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        self._saved.clear()

    def env(self) -> dict[str, str]:
        return dict(os.environ, SLURM_CONF=str(self.conf_path))

    def start(self, timeout_s: float = 90.0) -> "SingleNodeSlurm":
        ensure_installed()
        if os.geteuid() != 0:
            raise ClusterUnavailable("starting slurmctld/slurmd/munged needs root")
        for sub in ("ctld", "d", "munge"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        self._install("slurm.conf", slurm_conf(self.state, _node_line()))
        self._install("cgroup.conf", CGROUP_CONF)
        self._start_munge()
        self._start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf_path)])
        self._start("slurmd", ["slurmd", "-D", "-f", str(self.conf_path)])
        self._wait_for_idle_node(timeout_s)
        return self

    def _start_munge(self) -> None:
        sock_dir = Path("/run/munge")
        sock_dir.mkdir(parents=True, exist_ok=True)
        if (sock_dir / "munge.socket.2").exists() and subprocess.run(
            ["munge", "-n"], capture_output=True).returncode == 0:
            return  # a munged is already serving this host
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create", "--force"], check=True, capture_output=True)
        self._start("munged", ["munged", "--foreground", "--force"])
        for _ in range(50):
            if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise ClusterUnavailable("munged did not come up")

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.state / f"{name}.out", "ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                start_new_session=True)
        self.pids[name] = proc.pid

    def _wait_for_idle_node(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env())
            state = proc.stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return
            if state.startswith("down") or state.startswith("drain"):
                # the node first reports as down; once slurmd has registered it can be resumed
                subprocess.run(["scontrol", "update", f"nodename={socket.gethostname()}", "state=resume"],
                               capture_output=True, env=self.env())
            time.sleep(1)
        logs = "\n".join((self.state / f).read_text()[-800:] for f in ("slurmctld.log", "slurmd.log")
                         if (self.state / f).exists())
        raise ClusterUnavailable(f"node never became idle (last state {state!r}):\n{logs}")

    def job_records(self) -> list[dict[str, str]]:
        """Slurm's own job-completion records: one dict per finished job (JobId, JobName, JobState, ...)."""
        path = self.state / "jobcomp.log"
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            records.append(fields)
        return records

    def stop(self) -> None:
        """Stop the daemons this object started, by their process ids."""
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.waitpid(pid, os.WNOHANG)
                    os.kill(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    break
                time.sleep(0.1)
            else:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._restore()
