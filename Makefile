# Two entry points for a fresh machine: `make run` and `make test` (both set up .venv first).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench lock clean

setup: $(STAMP)

$(STAMP): requirements.lock constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.lock
	# zennit's only missing dependency is torchvision, which must not be installed (see
	# evaluate/zennit_compat.py); it is therefore installed alone and kept out of the lock.
	$(PY) -m pip install --quiet --no-deps zennit==0.5.1
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import importlib.util as u, sys; bad=[m for m in ('torchvision','torchaudio') if u.find_spec(m)]; sys.exit(f'forbidden packages installed: {bad}' if bad else 0)"
	touch $(STAMP)

run: setup
	$(PY) -m train.fit config=nmf_interpreter
	$(PY) -m evaluate.report n_clips=10 run=$$(ls -td $${INTERP_MODELS_RUNS:-runs}/nmf_interpreter/*/ | head -1)

test: setup
	@# Headless Chromium renders the evaluation report in tests/test_report.py (Debian package).
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the report rendering test will be skipped"
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# Explanation cost (evaluate.bench) and training throughput (train.bench) of every family.
# Cost next to deletion AUC needs a trained NMF run: the latest `make run` run, or RUN=<dir>.
RUN ?= $(shell ls -td $${INTERP_MODELS_RUNS:-runs}/nmf_interpreter/*/ 2>/dev/null | head -1)
bench: setup
	$(PY) -m evaluate.bench out=benchmarks $(if $(RUN),run=$(RUN))
	$(PY) -m train.bench out=benchmarks

lint: setup
	$(VENV)/bin/ruff check .

lock: setup
	head -n 2 requirements.lock > requirements.lock.new
	$(PY) -m pip freeze --exclude-editable --exclude zennit | sed -e 's/^torch==2.13.0+cpu/torch==2.13.0/' >> requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) runs multirun
