# Shared helpers of scripts/demo and scripts/test: find or install what Slate needs on a
# Debian or Ubuntu machine, and say clearly what to do when that is not possible.

die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "'$*' needs root: run as root or install sudo"
  fi
}

APT_UPDATED=
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "cannot install $* here: this is not a Debian/Ubuntu machine (apt-get is missing); install them yourself"
  if [ -z "$APT_UPDATED" ]; then
    note "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  note "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "could not install $*"
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    note "installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy \
      || die "could not install Rust; see https://rustup.rs"
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  local v
  v=$(rustc --version | awk '{print $2}')
  case "$v" in
    1.[0-8][0-9].*) die "Rust $v is too old: Slate needs 1.90 or newer (rustup update stable)";;
  esac
  command -v cc >/dev/null 2>&1 || apt_install build-essential
}

ensure_media_tools() {
  local missing=()
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  # pdftotext reads back the screenplay PDFs Slate writes (the tests check their text).
  command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Chromium and its WebDriver, for the dashboard's end-to-end tests; exports their paths.
ensure_browser() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  export SLATE_CHROMEDRIVER="${SLATE_CHROMEDRIVER:-$(command -v chromedriver)}"
  export SLATE_CHROMIUM="${SLATE_CHROMIUM:-$(command -v chromium)}"
}

# A local S3 API (moto's server mode, from PyPI, in its own venv) for the object-store tests;
# exports its path. The tests start and stop it themselves.
ensure_s3() {
  local venv="${SLATE_TOOLS_DIR:-$HOME/.cache/slate}/moto"
  if [ ! -x "$venv/bin/moto_server" ]; then
    note "installing moto (a local S3 API) into $venv"
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.1"
  fi
  export SLATE_MOTO_SERVER="${SLATE_MOTO_SERVER:-$venv/bin/moto_server}"
}

# OpenTimelineIO, its CMX 3600 and FCP XML adapters: the reference readers the film's exports are
# checked with. Exports SLATE_OTIO_PYTHON (a Python that imports them).
ensure_otio() {
  local venv="${SLATE_TOOLS_DIR:-$HOME/.cache/slate}/otio"
  if ! "$venv/bin/python" -c 'import opentimelineio' >/dev/null 2>&1; then
    note "installing OpenTimelineIO (the exports' reference reader) into $venv"
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "opentimelineio==0.18.1" "otio-cmx3600-adapter==1.0.0" "otio-fcp-adapter==1.0.0"
  fi
  export SLATE_OTIO_PYTHON="${SLATE_OTIO_PYTHON:-$venv/bin/python}"
}

pg_ok() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }

# Make sure a PostgreSQL server answers and export SLATE_TEST_DATABASE_URL for it.
ensure_postgres() {
  local url="${SLATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  # The database-restart test runs a private cluster of its own: it needs the server binaries.
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  if pg_ok "$url"; then export SLATE_TEST_DATABASE_URL="$url"; return; fi
  note "PostgreSQL does not answer at $(printf '%s' "$url" | sed -E 's#://([^:@/]*):[^@]*@#://\1:***@#'); starting it"
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then apt_install postgresql; fi
  local started=
  for v in $(ls /etc/postgresql 2>/dev/null); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 && started=1
  done
  [ -n "$started" ] || as_root service postgresql start >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && break
    sleep 1
  done
  if pg_ok "$url"; then export SLATE_TEST_DATABASE_URL="$url"; return; fi
  # A fresh Debian install asks for a password over TCP: give the postgres role a test password
  # through the local socket (peer authentication), and use it.
  if [ -z "${SLATE_TEST_DATABASE_URL:-}" ]; then
    as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'slate-test'\"" >/dev/null 2>&1 || true
    url="postgres://postgres:slate-test@127.0.0.1:5432/postgres"
    if pg_ok "$url"; then export SLATE_TEST_DATABASE_URL="$url"; return; fi
  fi
  die "PostgreSQL is not reachable at 127.0.0.1:5432 even after trying to start it. Start it, or set SLATE_TEST_DATABASE_URL to a server where the user may create databases."
}
