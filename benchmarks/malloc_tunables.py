"""The Snakefile's glibc malloc thresholds (kawhi/malloc.py) against glibc's defaults, on a whole `kawhi train` job.

Times the embedded config's GRPO+KAWHI job once with ``GLIBC_TUNABLES`` unset and once with the Snakefile's value,
side by side in alternating turns (benchmarks/train_job_turns.py says how). The two settings must give
byte-identical final weights: the last line says whether they did.

    nice .venv/bin/python benchmarks/malloc_tunables.py [--steps 20] [--pairs 3] [--jobs 2]

Last line: ``malloc_wall_ratio <tuned/default> sys_ratio <tuned/default> identical_weights <true|false>``.
"""

from __future__ import annotations

import argparse

from train_job_turns import add_turn_arguments, alternate_turns, job_env, weights_digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_turn_arguments(parser, steps=20)
    args = parser.parse_args()

    from kawhi.malloc import set_malloc_tunables

    default_env = job_env(malloc_thresholds=False)
    tuned_env = dict(default_env)
    print(f"tuned: {set_malloc_tunables(tuned_env)}")
    digests: set[str] = set()
    # both run the job's command as it is (list copies it); only the environment differs
    med = alternate_turns({"default": (list, default_env), "tuned": (list, tuned_env)}, args,
                          on_run=lambda name, out: digests.add(weights_digest(out)), prefix="kawhi-malloc-")
    print(f"malloc_wall_ratio {med['tuned']['wall'] / med['default']['wall']:.3f} "
          f"sys_ratio {med['tuned']['sys'] / med['default']['sys']:.3f} identical_weights {str(len(digests) == 1).lower()}")


if __name__ == "__main__":
    main()
