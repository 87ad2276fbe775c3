#!/usr/bin/env bash
# The test command: set up the Python reference environment, fetch the real
# models (cached after the first run), then build and run every test in
# release mode (the kernels are too slow for real models in debug builds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-python.sh
scripts/fetch-models.sh all
swift test -c release "$@"
