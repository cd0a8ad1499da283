# kdtools: `make demo` and `make test` set up .venv first when it is missing or stale.
PY := .venv/bin/python
STAMP := .venv/.kdtools-setup
SETUP_INPUTS := requirements.txt setup.py tools/setup_env.sh tools/mmcv_build.sh

.PHONY: setup demo test lint benchmark results clean

$(STAMP): $(SETUP_INPUTS)
	bash tools/setup_env.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest tests -q

lint: $(STAMP)
	$(PY) -m ruff check kdtools tools tests configs

benchmark: $(STAMP)
	$(PY) tools/benchmark.py

results: $(STAMP)
	$(PY) tools/results.py

clean:
	rm -rf work_dirs .pytest_cache
