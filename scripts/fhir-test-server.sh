#!/usr/bin/env bash
# A real FHIR R4 server on this machine for the integration tests, without Docker:
# sekmet-fhir (FastAPI + SQLite) in a virtualenv of its own, bound to 127.0.0.1.
#
# usage: scripts/fhir-test-server.sh install
#        scripts/fhir-test-server.sh start [--port P|auto]    prints the FHIR base URL on stdout
#        scripts/fhir-test-server.sh load [PATH...] [--url URL] [--token T]
#        scripts/fhir-test-server.sh stop
#        scripts/fhir-test-server.sh status                   exit 0 running, 3 stopped
#
# load runs the service's own `sarcoma-cds load-fixtures` (PATH: a folder of *.json or single files;
# default fhir_fixtures/), which fails if the server rejects any bundle or any entry. With --url it
# loads any FHIR server (e.g. the docker-compose HAPI).
#
# Environment (default):
#   FHIR_SERVER_VENV           .fhir-server/venv   virtualenv holding sekmet-fhir
#   FHIR_SERVER_STATE          .fhir-server/run    settings.yaml, SQLite DB, server.pid, server.log
#   FHIR_SERVER_PORT           8091                port when --port is not given ("auto": any free one)
#   FHIR_SERVER_TOKEN          test-token          the bearer token the server accepts (no other auth)
#   FHIR_SERVER_PYTHON         python3             interpreter for the server's venv (3.11+)
#   FHIR_SERVER_START_TIMEOUT  30                  seconds to wait for GET [base]/metadata
#   FHIR_SERVER_VALIDATION     strict              inbound validation: strict | warn | off
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="0.1.1"
CONSTRAINTS="$ROOT/scripts/fhir-server-constraints.txt"
VENV="${FHIR_SERVER_VENV:-$ROOT/.fhir-server/venv}"
STATE="${FHIR_SERVER_STATE:-$ROOT/.fhir-server/run}"
TOKEN="${FHIR_SERVER_TOKEN:-test-token}"
PYTHON="${FHIR_SERVER_PYTHON:-python3}"
START_TIMEOUT="${FHIR_SERVER_START_TIMEOUT:-30}"
VALIDATION="${FHIR_SERVER_VALIDATION:-strict}"
PIDFILE="$STATE/server.pid"
URLFILE="$STATE/base_url"
LOG="$STATE/server.log"

die() { echo "fhir-test-server: $*" >&2; exit 1; }
say() { echo "fhir-test-server: $*" >&2; }

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("sekmet-fhir"))' 2>/dev/null || true
}

# The PID file may outlive its process (reboot, kill -9); only trust it while it names a sekmet server.
running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(ps -p "$pid" -o args= 2>/dev/null)" == *sekmet* ]] || return 1
  echo "$pid"
}

port_free() {
  "$PYTHON" - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
}

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

metadata_ok() {
  "$VENV/bin/python" - "$1/metadata" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

cmd_install() {
  local have
  have="$(installed_version)"
  if [[ "$have" == "$VERSION" ]]; then
    say "sekmet-fhir $VERSION already installed in $VENV"
    return 0
  fi
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is older than 3.11; set FHIR_SERVER_PYTHON to a 3.11+ interpreter"
  local started=$SECONDS
  if [[ ! -x "$VENV/bin/python" ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" "sekmet-fhir==$VERSION" \
    || die "pip could not install sekmet-fhir==$VERSION into $VENV"
  say "installed sekmet-fhir $VERSION into $VENV in $((SECONDS - started)) s"
}

write_settings() {
  local port="$1"
  cat >"$STATE/settings.yaml" <<EOF
# Written by scripts/fhir-test-server.sh start; rewritten on every start.
base_url: http://127.0.0.1:$port/fhir
host: 127.0.0.1
port: $port
data_dir: $STATE/data
db_path: $STATE/data/fhir.sqlite3
own_private_key_path: $STATE/data/sekmet_private.pem
server_auth:
  types: [bearer]
  tokens: ["$TOKEN"]
simulator:
  enabled: false
validation:
  inbound: $VALIDATION
max_body_log: 20000
EOF
}

cmd_start() {
  local port="${FHIR_SERVER_PORT:-8091}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) [[ $# -ge 2 ]] || die "--port needs a value"; port="$2"; shift 2 ;;
      --port=*) port="${1#--port=}"; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  [[ "$(installed_version)" == "$VERSION" ]] || die "sekmet-fhir $VERSION is not installed; run: $0 install"
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid)"
    cat "$URLFILE"
    return 0
  fi
  if [[ "$port" == "auto" || "$port" == "0" ]]; then
    port="$(free_port)"
  elif [[ ! "$port" =~ ^[0-9]+$ ]]; then
    die "--port must be a number or 'auto'"
  elif ! port_free "$port"; then
    die "port $port on 127.0.0.1 is in use; pass --port P or --port auto"
  fi

  mkdir -p "$STATE/data"
  rm -f "$STATE"/data/fhir.sqlite3* "$PIDFILE" "$URLFILE"
  write_settings "$port"
  local base="http://127.0.0.1:$port/fhir"
  (cd "$STATE" && exec nohup "$VENV/bin/sekmet" serve --config "$STATE/settings.yaml" </dev/null >"$LOG" 2>&1) &
  pid=$!
  echo "$pid" >"$PIDFILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  until metadata_ok "$base"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      tail -n 30 "$LOG" >&2 || true
      die "the server exited during start-up (log: $LOG)"
    fi
    if ((SECONDS >= deadline)); then
      stop_pid "$pid"
      rm -f "$PIDFILE"
      tail -n 30 "$LOG" >&2 || true
      die "no answer from $base/metadata within $START_TIMEOUT s (log: $LOG)"
    fi
    sleep 0.2
  done
  echo "$base" >"$URLFILE"
  say "running (pid $pid), bearer token from FHIR_SERVER_TOKEN, log $LOG"
  echo "$base"
}

stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE" "$URLFILE"
    say "not running"
    return 0
  fi
  stop_pid "$pid"
  rm -f "$PIDFILE" "$URLFILE"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    say "running (pid $pid)"
    cat "$URLFILE"
    return 0
  fi
  say "stopped"
  return 3
}

cmd_load() {
  local url="" token="$TOKEN" paths=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --url) [[ $# -ge 2 ]] || die "--url needs a value"; url="$2"; shift 2 ;;
      --token) [[ $# -ge 2 ]] || die "--token needs a value"; token="$2"; shift 2 ;;
      -*) die "load: unknown option '$1'" ;;
      *) paths+=("$1"); shift ;;
    esac
  done
  if [[ -z "$url" ]]; then
    running_pid >/dev/null || die "no server running; start one first or pass --url"
    url="$(cat "$URLFILE")"
  fi
  [[ ${#paths[@]} -gt 0 ]] || paths=("$ROOT/fhir_fixtures")
  local cli="$ROOT/.venv/bin/sarcoma-cds"
  [[ -x "$cli" ]] || die "load uses the service's own loader ($cli): run 'make run' or 'make test' once first"
  local auth=()
  [[ -z "$token" ]] || auth=(--token "$token")
  "$cli" load-fixtures --fhir "$url" "${auth[@]}" "${paths[@]}"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) shift; cmd_start "$@" ;;
  load) shift; cmd_load "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
