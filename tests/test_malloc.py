"""kawhi.malloc: the glibc malloc thresholds the Snakefile gives every job."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kawhi.malloc import MMAP_THRESHOLD, TRIM_THRESHOLD, set_malloc_tunables

LOADER = Path("/lib64/ld-linux-x86-64.so.2")


def test_sets_both_thresholds_in_an_empty_environment():
    env: dict[str, str] = {}
    value = set_malloc_tunables(env)
    assert env["GLIBC_TUNABLES"] == value
    assert value.split(":") == [f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}",
                                f"glibc.malloc.trim_threshold={TRIM_THRESHOLD}"]


def test_keeps_what_the_user_set_and_is_idempotent():
    env = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F:glibc.malloc.trim_threshold=1024"}
    once = set_malloc_tunables(env)
    assert once == ("glibc.cpu.hwcaps=-AVX512F:glibc.malloc.trim_threshold=1024"
                    f":glibc.malloc.mmap_threshold={MMAP_THRESHOLD}")
    assert set_malloc_tunables(env) == once


@pytest.mark.skipif(not LOADER.exists(), reason="no glibc x86-64 loader here")
def test_glibc_reads_the_value():
    """glibc ignores a malformed GLIBC_TUNABLES silently; its loader lists what it actually took."""
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    set_malloc_tunables(env)
    listed = subprocess.run([str(LOADER), "--list-tunables"], env=env, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("this glibc's loader has no --list-tunables (glibc < 2.33)")
    values = dict(line.split(": ", 1) for line in listed.stdout.splitlines() if ": " in line)
    assert values["glibc.malloc.mmap_threshold"].split()[0] == hex(MMAP_THRESHOLD)
    assert values["glibc.malloc.trim_threshold"].split()[0] == hex(TRIM_THRESHOLD)


def test_the_snakefile_sets_it_for_its_jobs(repo_root, tmp_path):
    """A rule added to the Snakefile sees the thresholds in its shell, as every job does."""
    probe = tmp_path / "probe.smk"
    probe.write_text(f'include: "{repo_root / "Snakefile"}"\n\n'
                     'rule probe:\n    output: "probe.txt"\n    shell: "printenv GLIBC_TUNABLES > {output}"\n')
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("GLIBC_TUNABLES", None)
    subprocess.run([str(Path(sys.executable).parent / "snakemake"), "probe", "-s", str(probe), "--cores", "1",
                    "--directory", str(tmp_path), "--configfile", str(repo_root / "config" / "config.yaml")],
                   env=env, check=True, capture_output=True, text=True, timeout=300)
    assert (tmp_path / "probe.txt").read_text().strip() == set_malloc_tunables({})


def test_the_benchmark_compares_both_settings_on_real_jobs(train_job_benchmark):
    """benchmarks/malloc_tunables.py end to end, smallest size: one 1-step `kawhi train` job per setting, and
    the two jobs' weights are byte-identical."""
    last = train_job_benchmark("malloc_tunables.py")
    assert last[0::2] == ["malloc_wall_ratio", "sys_ratio", "identical_weights"]
    assert float(last[1]) > 0 and float(last[3]) > 0
    assert last[5] == "true"
