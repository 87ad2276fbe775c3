#!/usr/bin/env bash
# Create .venv with the pinned Python reference stack (scripts/requirements.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$root/.venv/bin/python" ]; then
    python3 -m venv "$root/.venv"
fi
if ! cmp -s "$root/scripts/requirements.txt" "$root/.venv/requirements.installed" 2>/dev/null; then
    "$root/.venv/bin/pip" install --quiet -r "$root/scripts/requirements.txt"
    cp "$root/scripts/requirements.txt" "$root/.venv/requirements.installed"
fi
