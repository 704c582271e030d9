# mnemo — the two commands a newcomer needs:
#
#   make run    build and start mnemo: Telegram when TELEGRAM_BOT_TOKEN is set,
#               otherwise the local console on embedded defaults
#   make test   build and run the whole test suite
#
# Everything else here is optional.

SHELL := /bin/bash
# One target dir shared by every checkout on this machine: a fresh clone does
# not rebuild the dependency tree (whisper.cpp and onnxruntime bindings later).
CARGO_TARGET_DIR ?= $(HOME)/.cache/mnemo/target
export CARGO_TARGET_DIR
CARGO ?= cargo

.PHONY: run test setup build release bench lint clean-target

## Start mnemo (console, or Telegram with TELEGRAM_BOT_TOKEN set).
run: setup
	$(CARGO) run --release --locked --bin mnemo -- run

## Run every test.
test: setup
	$(CARGO) test --locked --all-targets

## Check the toolchain and install what the build needs (idempotent).
setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --locked

release: setup
	$(CARGO) build --release --locked

## Criterion benchmarks (figures go to docs/BENCHMARKS.md).
bench: setup
	$(CARGO) bench --locked

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

clean-target:
	rm -rf "$(CARGO_TARGET_DIR)"
