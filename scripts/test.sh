#!/usr/bin/env bash
# Install what the tests need, check style, then run every test (unit and end-to-end, as root),
# all with Petrel's .venv (made by install-deps.sh). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
.venv/bin/ruff check src tests bench fuzz samples
.venv/bin/ruff format --check src tests bench fuzz samples
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests (exit 5): check the arguments: $*" >&2
fi
exit "$status"
