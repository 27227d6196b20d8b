# bench/common.sh: what bench/run and bench/cloud share, sourced by both (not run on its own).
# Before sourcing, set BENCH_NAME (the script's name, for messages). Provides:
#   die, say, shq, group                    messages and formatting
#   bench_invocation ARGS...                 sets INVOCATION: the command line, shell-quoted
#   bench_gnu_time                           makes sure /usr/bin/time is GNU time
#   bench_venv [NAME REQS]                   a pinned venv under bench/ (default .venv); sets PY
#   bench_hcctl                              the release binary (built or brought up to date)
#                                            unless HCCTL_BIN is given; sets HCCTL_BIN
#   bench_facts                              sets CPU_MODEL, MEM_TOTAL, COMMIT, HCCTL_VERSION
#   measure NAME CMD...                      GNU time; sets M_WALL (s), M_RSS (KiB), M_RC
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are for the scripts that source this file

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

die() {
  printf '%s: %s\n' "$BENCH_NAME" "$*" >&2
  exit 1
}

say() {
  printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2
}

# Shell-quote a word only when it needs it, so the recorded command stays readable.
shq() {
  if [[ "$1" =~ ^[A-Za-z0-9_./,=:+@%-]+$ ]]; then printf '%s' "$1"; else printf '%q' "$1"; fi
}

# Digits grouped by thousands: 1000000 -> 1,000,000.
group() { sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"; }

bench_invocation() {
  INVOCATION=""
  [[ -n "${HCCTL_BIN:-}" ]] && INVOCATION+="HCCTL_BIN=$(shq "$HCCTL_BIN") "
  [[ -n "${CARGO_TARGET_DIR:-}" ]] && INVOCATION+="CARGO_TARGET_DIR=$(shq "$CARGO_TARGET_DIR") "
  INVOCATION+="$BENCH_NAME"
  local arg
  for arg in "$@"; do INVOCATION+=" $(shq "$arg")"; done
}

bench_gnu_time() {
  if [[ ! -x /usr/bin/time ]]; then
    say "/usr/bin/time is missing; installing GNU time"
    local sudo=()
    if ((EUID != 0)); then
      command -v sudo >/dev/null || die "/usr/bin/time is missing and not root: apt-get install time"
      sudo=(sudo)
    fi
    "${sudo[@]}" apt-get install -y time >&2 ||
      { "${sudo[@]}" apt-get update >&2 && "${sudo[@]}" apt-get install -y time >&2; } ||
      die "could not install GNU time (apt-get install -y time)"
  fi
  /usr/bin/time --version 2>&1 | grep -q 'GNU' || die "/usr/bin/time is not GNU time"
}

# bench_venv [NAME REQUIREMENTS]: the Python venv bench/NAME (default .venv) with the pinned
# REQUIREMENTS (default requirements.txt) installed, re-installed when that file changes; sets PY.
# bench/.venv holds the old script's stack and pymongo; bench/.venv-s3 the S3 client (botocore
# needs python-dateutil < 3, which the old script's pinned stack is not).
bench_venv() {
  local venv="$BENCH_DIR/${1:-.venv}" requirements="$BENCH_DIR/${2:-requirements.txt}"
  PY="$venv/bin/python"
  if [[ ! -x "$PY" ]]; then
    local base_python
    base_python="$(command -v python3.11 || command -v python3 || true)"
    [[ -n "$base_python" ]] || die "python3 not found (need Python 3.11 for $venv)"
    say "creating $venv with $base_python"
    "$base_python" -m venv "$venv"
  fi
  local req_hash stamp="$venv/.requirements.sha256"
  req_hash="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$req_hash" ]]; then
    say "installing bench/$(basename "$requirements") into $venv"
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
    printf '%s\n' "$req_hash" >"$stamp"
  fi
}

bench_hcctl() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hcctl/target}"
  if [[ -n "${HCCTL_BIN:-}" ]]; then
    [[ -x "$HCCTL_BIN" ]] || die "HCCTL_BIN=$HCCTL_BIN is not an executable file"
  else
    HCCTL_BIN="$CARGO_TARGET_DIR/release/hcctl"
    # Build when missing; when present, still let cargo bring it up to date (a no-op when it
    # is) so that the binary measured is the one of the git commit recorded in the results.
    if command -v cargo >/dev/null; then
      say "cargo build --release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
      (cd "$REPO_DIR" && cargo build --release >&2) || die "cargo build --release failed"
    elif [[ -x "$HCCTL_BIN" ]]; then
      say "cargo not found: using the existing $HCCTL_BIN as it is"
    else
      die "$HCCTL_BIN is missing and cargo is not installed"
    fi
    [[ -x "$HCCTL_BIN" ]] || die "cargo build did not produce $HCCTL_BIN"
  fi
  HCCTL_BIN="$(cd "$(dirname "$HCCTL_BIN")" && pwd)/$(basename "$HCCTL_BIN")"
}

bench_facts() {
  CPU_MODEL="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
  [[ -n "$CPU_MODEL" ]] || CPU_MODEL="unknown"
  MEM_TOTAL="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  COMMIT="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo "none (no commits yet)")"
  if [[ -n "$(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    COMMIT+=" (with uncommitted changes)"
  fi
  HCCTL_VERSION="$("$HCCTL_BIN" --version 2>/dev/null | head -n 1 || true)"
  [[ -n "$HCCTL_VERSION" ]] || HCCTL_VERSION="unknown"
}

# measure NAME CMD...: run CMD under GNU time, its output in $LOGS/NAME.log; sets M_WALL (s),
# M_RSS (KiB), M_RC.
measure() {
  local name="$1"
  shift
  M_RC=0
  /usr/bin/time -f '%e %M' -o "$LOGS/$name.time" "$@" >"$LOGS/$name.log" 2>&1 || M_RC=$?
  read -r M_WALL M_RSS < <(tail -n 1 "$LOGS/$name.time") || true
  if [[ ! "${M_WALL:-}" =~ ^[0-9.]+$ || ! "${M_RSS:-}" =~ ^[0-9]+$ ]]; then
    M_WALL="" M_RSS=""
  fi
  if ((M_RC != 0)); then
    say "$name exited with status $M_RC; last lines of $LOGS/$name.log:"
    tail -n 15 "$LOGS/$name.log" >&2 || true
  fi
}
