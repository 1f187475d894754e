# Two commands set up everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Runtime state; absolute so that dbt (which runs inside dbt_project/) sees the same files.
DATA_DIR ?= $(CURDIR)/data
override DATA_DIR := $(abspath $(DATA_DIR))
DAGSTER_HOME ?= $(DATA_DIR)/dagster_home
override DAGSTER_HOME := $(abspath $(DAGSTER_HOME))
export DATA_DIR DAGSTER_HOME

DASHBOARD_PORT ?= 8501
export DASHBOARD_PORT
DASHBOARD_CMD := $(BIN)/streamlit run dashboard/app.py --server.port $(DASHBOARD_PORT) --server.address 127.0.0.1 \
	--server.headless true --browser.gatherUsageStats false --client.toolbarMode viewer

MLFLOW_PORT ?= 5000
MLFLOW_UI_URL ?= http://127.0.0.1:$(MLFLOW_PORT)
export MLFLOW_UI_URL

DEMO_USERS ?= 3000
DEMO_SEED ?= 42

# The engine dbt builds on (docs/spark.md): the manifest Dagster loads is parsed for it, again when it changes
DBT_TARGET ?= duckdb
export DBT_TARGET
MANIFEST := dbt_project/target/manifest.json
PARSED_FOR := dbt_project/target/.parsed-for-$(DBT_TARGET)
DBT_SOURCES := $(shell find dbt_project/models dbt_project/macros dbt_project/tests dbt_project/seeds -type f 2>/dev/null) \
	dbt_project/dbt_project.yml dbt_project/profiles.yml

.PHONY: help install lock demo run test test-fast dev sql collect dashboard screenshots bench lint format manifest clean \
	erase export-user expire

help:
	@echo "make demo   fresh machine to finished warehouse: install, generate demo events, run everything"
	@echo "make run    load what is in \$$DATA_DIR/landing and materialise every asset"
	@echo "make test   the whole test suite (what CI runs)"
	@echo "make test-fast  the tests not marked slow (no dbt or Dagster end-to-end run)"
	@echo "make dev    Dagster UI (:3000) with schedules and sensors, collector (:8090), dashboard (:8501), MLflow UI (:5000)"
	@echo "make sql    read-only SQL shell on the published copy (serving.duckdb)"
	@echo "make collect  the event collector alone (Segment's HTTP Tracking API on 127.0.0.1:8090)"
	@echo "make dashboard  the dashboard on http://127.0.0.1:$(DASHBOARD_PORT) (reads the serving copy)"
	@echo "make erase USERS=id1,id2  erase users (and their stitched anonymous ids) everywhere, suppress later events"
	@echo "make export-user USERS=id1  everything held about users, in one file (OUT=path)"
	@echo "make expire  delete raw events, rejects and landing files older than RAW_RETENTION_DAYS"
	@echo "make lint   ruff"

# the editable install maps the top-level packages that exist when it runs: a new package means installing again.
# Bytecode is compiled here: uv leaves it to first import, and with PYTHONDONTWRITEBYTECODE set (as on our CI
# machines) every process would compile its imports again, about 9 s for each Dagster run and dbt invocation.
$(INSTALLED): pyproject.toml requirements.lock $(wildcard */__init__.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.9,<1"
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(INSTALLED)

# Re-resolve the pinned set from pyproject.toml (run after changing dependencies there).
lock: $(INSTALLED)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark --python-version 3.11 --no-header -o requirements.lock

# dagster-dbt reads target/manifest.json; it is built here, never at import time. The vars are those the Dagster
# dbt resource passes, so that the parse state saved here stays valid for its runs (partial parsing).
$(MANIFEST): $(INSTALLED) $(DBT_SOURCES) $(PARSED_FOR)
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --target $(DBT_TARGET) --quiet --vars '{"data_dir": "$(DATA_DIR)"}'
	touch $@

$(PARSED_FOR):
	mkdir -p dbt_project/target
	rm -f dbt_project/target/.parsed-for-*
	touch $@

manifest: $(MANIFEST)

$(DAGSTER_HOME)/dagster.yaml: orchestration/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp orchestration/dagster.yaml $@

demo: $(MANIFEST) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/demo-events --data-dir $(DATA_DIR) --users $(DEMO_USERS) --seed $(DEMO_SEED) --file-rows 50000
	@# the generator renames each finished file into place: nothing is half-written, no need to wait
	SETTLE_SECONDS=0 $(MAKE) --no-print-directory run

# orchestration.recover first fails the runs a killed Dagster left STARTED: they hold the DuckDB writer's pool slot.
run: $(MANIFEST) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m orchestration.recover
	$(BIN)/dagster job execute -m orchestration.definitions -j materialize_everything
	@echo "Done. Look at it: 'make dev' (Dagster UI on http://127.0.0.1:3000) or query $(DATA_DIR)/warehouse.duckdb"

# One worker per core, each test file whole on one worker (module-scoped fixtures build their warehouse once)
test: $(MANIFEST)
	$(BIN)/python -m pytest -n auto --dist loadfile

# The tests not marked slow (no dbt or Dagster end-to-end run): a quick check while working
test-fast: $(MANIFEST)
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not slow"

# The collector, the dashboard and the MLflow UI run beside Dagster; Ctrl-C (or Dagster exiting) stops them, and
# the collector rotates its spool on the way out. (The MLflow UI runs a uvicorn child: its children go first.)
# The live path (docs/live.md): without LIVE_REDIS_URL a redis-server on 127.0.0.1:6379 with its files in
# $(DATA_DIR)/redis/ (when Debian's redis-server is installed), the consumer tailing the spool into it, and the
# profile API (:8091).
dev: $(MANIFEST) $(DAGSTER_HOME)/dagster.yaml
	mkdir -p $(DATA_DIR)
	$(BIN)/python -m orchestration.recover
	$(BIN)/python -m collector & collector=$$!; \
	$(DASHBOARD_CMD) >/dev/null & dashboard=$$!; \
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(DATA_DIR)/mlflow.db --default-artifact-root $(DATA_DIR)/mlartifacts \
		--host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 >/dev/null 2>&1 & mlflow=$$!; \
	redis=; if [ -z "$$LIVE_REDIS_URL" ] && command -v redis-server >/dev/null; then \
		mkdir -p $(DATA_DIR)/redis; \
		redis-server --port 6379 --bind 127.0.0.1 --dir $(DATA_DIR)/redis --appendonly yes --save '' >/dev/null & redis=$$!; \
		sleep 0.5; \
	fi; \
	$(BIN)/python -m live consume & live=$$!; \
	$(BIN)/python -m live api & profiles=$$!; \
	trap 'pkill -P $$mlflow; kill -TERM $$collector $$dashboard $$mlflow $$live $$profiles 2>/dev/null; \
		wait $$collector $$dashboard $$live $$profiles; \
		[ -n "$$redis" ] && kill -TERM $$redis 2>/dev/null; true' EXIT; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

dashboard: $(INSTALLED)
	$(DASHBOARD_CMD)

# Screenshots of every dashboard page into docs/dashboard/ (after make demo; needs chromium and chromium-driver)
screenshots: $(INSTALLED)
	$(BIN)/python -m dashboard.screenshots --out docs/dashboard

# The event collector alone: Segment's HTTP Tracking API on $$COLLECTOR_HOST:$$COLLECTOR_PORT (default 127.0.0.1:8090),
# rotating whole files into $(DATA_DIR)/landing/collector/. Write keys: COLLECTOR_WRITE_KEYS=key:source,... (unset: `dev`).
collect: $(INSTALLED)
	$(BIN)/python -m collector

# A read-only SQL shell on the published copy ($(DATA_DIR)/serving.duckdb); one statement: make sql Q="select 1"
sql: $(INSTALLED)
	$(BIN)/python -m serving.shell $(if $(Q),"$(Q)")

# Privacy (docs/privacy.md). Stop `make dev`'s Dagster first or use its erase_users job: DuckDB has one writer.
erase: $(MANIFEST)
	$(BIN)/python -m privacy erase --users "$(USERS)"

export-user: $(MANIFEST)
	$(BIN)/python -m privacy export-user --users "$(USERS)" $(if $(OUT),--out "$(OUT)")

expire: $(MANIFEST)
	$(BIN)/python -m privacy expire

# Benchmarks (figures, not pass/fail): 1M and 10M events; BENCH_ARGS=--with-100m adds 100M.
bench: $(MANIFEST)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.collector

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf dbt_project/target dbt_project/logs
