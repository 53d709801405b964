# `make run`: bootstrap .venv and run the embedded default grid. `make test`: bootstrap and run pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
CORES ?= all
# Rules call the `kawhi` command; it lives in the venv.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test venv dry-run report clean sandbox lock

venv: $(STAMP)

# Rebuilt when missing or older than pyproject.toml. torch is pinned to the wheel that pairs with
# torchvision (transformers' Qwen-VL processors need torchvision).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/python -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install -e ".[test,slurm]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

dry-run: $(STAMP)
	$(BIN)/snakemake -n --cores $(CORES)

test: $(STAMP) sandbox
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ChartMimic scoring runs generated code in bubblewrap (docs/eval.md, "The sandbox"). Installed here
# when root can (apt); otherwise a note: the sandbox tests then skip with the reason, and ChartMimic
# scoring stops with the same hint.
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y bubblewrap >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y bubblewrap >/dev/null; }; }; } || \
	  echo "note: bubblewrap (bwrap) is not installed; ChartMimic scoring needs it: apt-get install bubblewrap"

# The paper profile's pinned environment (envs/kawhi.yaml installs it); rerun after changing pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install uv >/dev/null
	$(BIN)/uv pip compile pyproject.toml --extra gpu --extra slurm --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" -o envs/paper.lock.txt

clean:
	rm -rf results logs .snakemake
