#!/usr/bin/env bash
# Tests the packaging and every language binding, from a fresh clone:
#   deps        scripts/ensure-deps.sh (apt-installs missing toolchains)
#   build       cargo build --release: the CLI, then the library (once)
#   install     scripts/install.sh into a temporary prefix
#   cmake       tests/cmake-consumer: find_package(tzstore) in a moved copy of
#               the prefix, shared + static, ctest
#   pkgconfig   tests/pkgconfig-consumer: C built with pkg-config, shared + static
#   valgrind    the C and C++ consumers under valgrind (no leaks, no errors)
#   ocaml       dune test in bindings/ocaml on target/release (TZSTORE_SOURCE),
#               then the test binary again on the installed library
#   go          go vet + go test in bindings/go against the installed prefix
#               (pkg-config) (+ -race with TZS_GO_RACE=1)
#   readme      bindings/README.md shows the tested example files
# Prints one PASS/FAIL line per suite and exits non-zero if any failed.
# Everything is built under target/bindings-test/run-<pid> (removed on
# success, kept with its logs on failure); nothing is downloaded except
# distribution packages by ensure-deps.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
run=$root/target/bindings-test/run-$$
logs=$run/logs
mkdir -p "$logs" "$run/tmp"
prefix=$run/prefix

export TMPDIR=$run/tmp
export RUST_BACKTRACE=0
export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off
export GOCACHE=$run/gocache GOPATH=$run/gopath GOENV=off
export XDG_CACHE_HOME=$run/cache

failures=0
failed_suites=()

# suite NAME COMMAND...: runs the command with its output in logs/NAME.log.
suite() {
  local name=$1
  shift
  local start=$SECONDS
  if "$@" >"$logs/$name.log" 2>&1; then
    printf 'PASS %-10s (%ds)\n' "$name" $((SECONDS - start))
    return 0
  fi
  printf 'FAIL %-10s (%ds), log %s:\n' "$name" $((SECONDS - start)) "$logs/$name.log"
  tail -n 40 "$logs/$name.log" | sed 's/^/    /'
  failures=$((failures + 1))
  failed_suites+=("$name")
  return 1
}

# Builds against a moved copy of the prefix: the CMake package is relocatable.
cmake_consumer() {
  rm -rf "$run/prefix-moved" && cp -a "$prefix" "$run/prefix-moved" &&
    cmake -S tests/cmake-consumer -B "$run/cmake" -DCMAKE_PREFIX_PATH="$run/prefix-moved" \
    -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$run/cmake" -j2 &&
    (cd "$run/cmake" && ctest --output-on-failure)
}

valgrind_consumers() {
  # --fair-sched=yes: valgrind runs one thread at a time, and its default
  # lock lets threads spinning on a condition (the readers of the index
  # test) starve the one they wait for (a merge) for minutes.
  local vg=(valgrind -q --fair-sched=yes --leak-check=full --show-leak-kinds=all
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9)
  local bin
  for bin in "$run/pkgconfig/consumer_shared" "$run/pkgconfig/consumer_static" \
    "$run/cmake/consumer_shared" "$run/cmake/consumer_static" \
    "$run/cmake/floating_shared" "$run/cmake/floating_static" \
    "$run/cmake/index_shared" "$run/cmake/index_static" \
    "$run/cmake/kv_shared" "$run/cmake/kv_static" \
    "$run/cmake/block_store_shared" "$run/cmake/block_store_static" \
    "$run/cmake/block_chain_shared" "$run/cmake/block_chain_static" \
    "$run/cmake/indexed_file_shared" "$run/cmake/indexed_file_static" \
    "$run/cmake/cemented_shared" "$run/cmake/cemented_static" \
    "$run/cmake/gc_sync_shared" "$run/cmake/gc_sync_static" \
    "$run/cmake/stream_context_shared" "$run/cmake/stream_context_static"; do
    echo "== valgrind $bin"
    "${vg[@]}" "$bin" "$run/vg-work" || return 1
  done
}

# The stubs build against this checkout (TZSTORE_SOURCE: include/tzstore.h,
# target/release/libtzstore.so, with an rpath there); the test binary then
# runs again on the installed library, which LD_LIBRARY_PATH puts before
# that rpath (a RUNPATH).
ocaml_tests() {
  (cd bindings/ocaml && export TZSTORE_SOURCE=$root &&
    dune build --build-dir "$run/dune" 2>&1 &&
    dune test --force --build-dir "$run/dune") ||
    return 1
  if [ -f "$prefix/lib/libtzstore.so.0" ]; then
    echo "== with LD_LIBRARY_PATH=$prefix/lib"
    LD_LIBRARY_PATH=$prefix/lib ldd "$run/dune/default/test/test_tzstore.exe" |
      grep -F "libtzstore.so.0 => $prefix/lib/libtzstore.so.0" || return 1
    LD_LIBRARY_PATH=$prefix/lib "$run/dune/default/test/test_tzstore.exe"
  fi
}

# The Go package takes its flags from pkg-config (#cgo pkg-config: tzstore),
# so it builds against the installed prefix; the rpath lets the test binary
# find libtzstore.so.0 there.
go_tests() {
  [ -f "$prefix/lib/pkgconfig/tzstore.pc" ] || { echo "install failed: no tzstore.pc"; return 1; }
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig CGO_LDFLAGS="-Wl,-rpath,$prefix/lib"
  (cd bindings/go && go vet ./... && go test -count=1 ./...) || return 1
  if [ "${TZS_GO_RACE:-0}" = 1 ]; then
    (cd bindings/go && go test -race -count=1 ./...)
  fi
}

# The library and the CLI, in the order scripts/install.sh builds them.
build_release() {
  local features=()
  if grep -Eq '^cli *=' Cargo.toml; then features=(--features cli); fi
  cargo build --release --bin tzstore "${features[@]}" && cargo build --release --lib
}

total_start=$SECONDS
if ! suite deps scripts/ensure-deps.sh || ! suite build build_release; then
  echo "FAILED: ${failed_suites[*]} (toolchain or build; other suites skipped)"
  exit 1
fi
if suite install env TZS_SKIP_BUILD=1 scripts/install.sh "$prefix"; then
  suite cmake cmake_consumer
  suite pkgconfig tests/pkgconfig-consumer/run.sh "$prefix" "$run/pkgconfig"
  if [ -x "$run/pkgconfig/consumer_static" ] && [ -x "$run/cmake/consumer_static" ]; then
    suite valgrind valgrind_consumers
  else
    printf 'FAIL %-10s (consumers not built)\n' valgrind
    failures=$((failures + 1))
    failed_suites+=(valgrind)
  fi
fi
suite ocaml ocaml_tests
suite go go_tests
suite readme scripts/check-readme-examples.sh

echo "total $((SECONDS - total_start))s"
if [ "$failures" -ne 0 ]; then
  echo "FAILED: ${failed_suites[*]} (logs in $logs)"
  exit 1
fi
rm -rf "$run"
echo "all binding suites passed"
