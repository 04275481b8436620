#!/usr/bin/env bash
# Installs the Debian packages the tests run, when missing, in one apt-get call: Chromium for the browser
# tests (Playwright drives it; it downloads no browser), nginx for the reverse-proxy test, PostgreSQL and
# Redis for the store tests. The test session starts its own servers on free loopback ports
# (tests/integration/servers.py, test_nginx.py) and never uses the ones the packages may start.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
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
echo "Installing Debian ${missing[*]} for the tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
