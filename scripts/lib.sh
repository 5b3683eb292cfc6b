# Helpers for scripts/test and bench/: install and start the machine's services.
# Each ensure_* returns 0 when it started something (so the caller stops it), 1 otherwise.

log() { printf '\n== %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_system_packages() {
  # python3: Debian's own (the Quick start test runs on it); chromium: the browser tests
  local want=(postgresql rabbitmq-server nginx orthanc orthanc-dicomweb orthanc-postgresql orthanc-gdcm dcmtk dicom3tools python3 chromium)
  local missing=()
  for pkg in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    # no daemon starts from the package scripts here; we start what we need below
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_node() {
  # the single sign-on tests run a real OpenID Connect provider (node-oidc-provider)
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing nodejs and npm"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ ! -d tests/support/oidc/node_modules/oidc-provider ]; then
    log "installing the test identity provider (npm)"
    (cd tests/support/oidc && npm ci --no-audit --no-fund --silent)
  fi
}

python_for_uv() {
  for candidate in python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  echo "no Python >= 3.11 found" >&2; return 1
}

ensure_uv() {
  # as the Quick start does: uv from PyPI into a private folder (no pip, no root; PEP 668)
  if ! command -v uv >/dev/null; then
    log "fetching uv (scripts/bootstrap.py)"
    local uv
    uv=$("$(python_for_uv)" scripts/bootstrap.py --print-uv)
    PATH="$(dirname "$uv"):$PATH"
    export PATH
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_postgres() {
  local started=1 version
  if ! port_open 5432; then
    log "starting PostgreSQL"
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then echo "PostgreSQL is not installed" >&2; exit 1; fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 60); do port_open 5432 && break; sleep 0.5; done
    started=0
  fi
  # the tests connect as postgres over 127.0.0.1 without a password (trust, as on the
  # dev machines); a fresh Debian install asks for one: trust loopback for the run
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
    local hba
    hba=$(as_root runuser -u postgres -- psql -tAc 'SHOW hba_file')
    log "trusting loopback connections in $hba"
    as_root sed -i -E 's#^(host\s+all\s+all\s+(127\.0\.0\.1/32|::1/128)\s+)\S+#\1trust#' "$hba"
    as_root runuser -u postgres -- psql -tAc 'SELECT pg_reload_conf()' >/dev/null
  fi
  return $started
}

ensure_rabbitmq() {
  port_open 5672 && return 1
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached
  as_root rabbitmqctl await_startup --timeout 120 >/dev/null
  return 0
}

stop_service() {
  case "$1" in
    postgres)
      log "stopping PostgreSQL (started here)"
      as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main stop || true ;;
    rabbitmq)
      log "stopping RabbitMQ (started here)"
      as_root rabbitmqctl stop >/dev/null || true ;;
  esac
}
