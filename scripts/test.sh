#!/usr/bin/env bash
# Install what the tests need, check style, then run every test (unit and end-to-end, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
ruff check src tests bench fuzz samples
ruff format --check src tests bench fuzz samples
exec python3 -m pytest -q -p no:cacheprovider "$@"
