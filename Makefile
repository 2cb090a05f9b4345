# The two set-up commands: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test unit bench bench-team browser services wrk clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# make run PORT=5050 picks another port for the dashboard.
PORT ?= 5000
run: install
	$(BIN)/dashboard demo --port $(PORT)

# Browser tests use Debian's Chromium; install it where apt is at hand and it is missing
# (elsewhere the tests fall back to Playwright's own browser).
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; \
	fi

# PostgreSQL and Redis for the tests that run against real servers (the tests start and
# stop throwaway instances on free loopback ports; nothing runs as a service).
services:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's$$missing for the tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

test: install browser services
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

# wrk (Debian's package) drives the benchmark's throughput section; installed where apt
# is at hand and it is missing (without it the benchmark skips that section and says so).
wrk:
	@if ! command -v wrk >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's wrk for the benchmark"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q wrk; \
	fi

# make bench BENCH_ARGS="--repeat 60 --latency 0.1 --load-seconds 5"
bench: install wrk
	$(BIN)/python -m tests.benchmarks.run $(BENCH_ARGS)

# 100 simulated agents on 2 instances x 2 workers, PostgreSQL + Redis, for 60 s (Locust):
# make bench-team TEAM_ARGS="--agents 100 --seconds 60 --latency 0.1"
bench-team: install services
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python -m tests.benchmarks.team_load $(TEAM_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
