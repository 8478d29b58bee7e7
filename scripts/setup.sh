#!/usr/bin/env bash
# Create .venv and install uarbench into it. torch 2.13.0 (CPU build, on local disk) goes first:
# an unpinned torch would pull a multi-GB CUDA build. `bash scripts/setup.sh test` adds the
# test extra.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
