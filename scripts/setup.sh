#!/usr/bin/env bash
# Create .venv and install uarbench into it; `bash scripts/setup.sh test` adds the test extra.
#
# torch: by default torch==2.13.0 goes in first (the tested version; on machines like ours pip
# resolves it to a CPU build on the local disk, while an unpinned torch would pull a multi-GB
# CUDA build). On a GPU machine whose torch is already installed (conda, a system or container
# image), keep it: UARBENCH_TORCH=keep bash scripts/setup.sh
#   - .venv then sees the interpreter's site packages (--system-site-packages), so that torch
#   - nothing replaces torch: any torch >= 2.4 satisfies pyproject.toml
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${UARBENCH_TORCH:-install}"
case "$mode" in
  install|keep) ;;
  *) echo "setup.sh: UARBENCH_TORCH must be 'install' (default) or 'keep', got '$mode'" >&2; exit 2;;
esac
if [ ! -x .venv/bin/python ]; then
  if [ "$mode" = keep ]; then python3 -m venv --system-site-packages .venv; else python3 -m venv .venv; fi
fi
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [ "$mode" = keep ]; then
  if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__ < '2.4')" 2>/dev/null; then
    echo "setup.sh: UARBENCH_TORCH=keep but no torch >= 2.4 is importable from .venv" >&2
    echo "  (install torch first, or run without UARBENCH_TORCH=keep)" >&2
    exit 1
  fi
  .venv/bin/python -c "import torch; print(f'setup.sh: keeping torch {torch.__version__} (CUDA: {torch.cuda.is_available()})')"
else
  "${pip[@]}" torch==2.13.0
fi
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
"${pip[@]}" -e ".${extra}"
