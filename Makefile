# Quick start:  make run   (dashboard on the demo camera)   |   make test   (everything the CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: install install-dev run test bench bench-quick bench-stats bench-quality bench-prelogin bench-limits soak api demo-adapter toydata clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev
	bash scripts/install-test-packages.sh

run: install
	$(PY) -m utils.config > /dev/null
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: install-dev
	bash scripts/test.sh

bench: install
	$(PY) bench/pipeline.py --json

bench-quick: install
	$(PY) bench/pipeline.py --json --quick

bench-stats: install
	$(PY) bench/stats.py --json

bench-quality: install-dev
	$(PY) bench/quality.py --json

bench-prelogin: install-dev
	$(PY) bench/prelogin.py --json

bench-limits: install-dev
	$(PY) bench/limits.py --json

soak: install
	$(PY) bench/soak.py --minutes 10 --json

api: install
	$(PY) -m utils.config > /dev/null
	$(PY) -m api

demo-adapter: install
	$(PY) -m utils.demo_adapter --port 5050 --folder toydata

toydata: install
	$(PY) -m utils.synthetic toydata

clean:
	rm -rf $(VENV) .pytest_cache artifacts
