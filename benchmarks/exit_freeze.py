"""The ``kawhi`` command's exit (kawhi.cli.run: ``gc.freeze()`` before the interpreter shuts down) against a plain exit.

Times the embedded config's GRPO+KAWHI ``kawhi train`` job (``--steps`` steps, default 2, so that start-up and exit
dominate) with the Snakefile's malloc thresholds, side by side in alternating turns (benchmarks/train_job_turns.py
says how). "plain" calls ``kawhi.cli.main`` and exits; "frozen" is the ``kawhi`` console script. The exit happens
after the job's outputs are written, so the weights must be byte-identical; the last line says whether they were.

    nice .venv/bin/python benchmarks/exit_freeze.py [--steps 2] [--pairs 3] [--jobs 2]

Last line: ``exit_saving_s <plain - frozen wall, s> wall_ratio <frozen/plain> identical_weights <true|false>``.
"""

from __future__ import annotations

import argparse

from train_job_turns import add_turn_arguments, alternate_turns, job_env, kawhi_run_by, weights_digest

PLAIN_EXIT = "import sys; from kawhi.cli import main; sys.exit(main(sys.argv[1:]))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_turn_arguments(parser, steps=2)
    args = parser.parse_args()

    env = job_env()
    settings = {"plain": (kawhi_run_by(PLAIN_EXIT), env), "frozen": (list, env)}  # list: the command as it is
    digests: set[str] = set()
    med = alternate_turns(settings, args, on_run=lambda name, out: digests.add(weights_digest(out)),
                          prefix="kawhi-exit-")
    print(f"exit_saving_s {med['plain']['wall'] - med['frozen']['wall']:.2f} "
          f"wall_ratio {med['frozen']['wall'] / med['plain']['wall']:.3f} identical_weights {str(len(digests) == 1).lower()}")


if __name__ == "__main__":
    main()
