#!/usr/bin/env bash
# Regenerates requirements.lock: the exact runtime dependencies the Docker image installs, resolved
# from pyproject.toml's ranges in a fresh virtual environment, with the drivers of the shared stores
# (extras postgres and redis). Run it after changing dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet '.[postgres,redis]'
{
  echo "# Runtime dependencies of sarcoma-cds, with its postgres and redis extras, at exact versions;"
  echo "# the Docker image installs these."
  echo "# Regenerate with scripts/lock.sh after changing the dependencies in pyproject.toml."
  "$tmp/venv/bin/python" -m pip freeze --exclude sarcoma-cds
} > requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"
