#!/usr/bin/env bash
# Installs Debian's PostgreSQL and Redis servers for the store tests, when they are missing. The test
# session starts its own on free loopback ports (tests/integration/servers.py) and does not use the
# ones the packages may start.
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "Installing Debian ${missing[*]} for the store tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
ls /usr/lib/postgresql/*/bin/pg_ctl
redis-server --version
