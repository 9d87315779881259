#!/usr/bin/env bash
# Main job: install what is needed, then run the demo tunnel (two namespaces, real ESP, traffic).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec .venv/bin/petrel demo "$@"
