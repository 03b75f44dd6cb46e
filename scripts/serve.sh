#!/usr/bin/env bash
# Start the server, setting everything up first if needed (./config.sh skips what is done).
#   ./scripts/serve.sh [server flags]      e.g. --port 30000 --model-path /path/to/model
# Flags: .venv/bin/python -m server --help
set -euo pipefail
cd "$(dirname "$0")/.."
./config.sh >&2
exec .venv/bin/python -m server "$@"
