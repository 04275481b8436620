#!/usr/bin/env bash
# Installs Debian's nginx for the reverse-proxy test (tests/integration/test_nginx.py starts it itself,
# on 127.0.0.1, with deploy/nginx.conf; the system service is never used).
set -euo pipefail
if [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "Installing Debian nginx for the reverse-proxy test..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
/usr/sbin/nginx -v
