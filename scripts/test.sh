#!/usr/bin/env bash
# Runs every test of tzstore: formatting, clippy, Rust tests (unit, property,
# crash, doc tests, header drift), rustdoc without warnings, the ctest2
# layout check, the C tests (with valgrind), the bindings' tests, and the
# install test (every README example built against a temporary install).
# Installs missing system packages itself.
# Ends with one line "N passed, N failed" (test cases, counted over suites).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export RUST_BACKTRACE=0
export CARGO_TERM_COLOR=never
LOG_DIR="$ROOT/target/test-logs"
mkdir -p "$LOG_DIR"

passed=0
failed=0
failed_steps=()

# step NAME CMD...: runs CMD, logs to target/test-logs/NAME.log, counts it.
step() {
  local name=$1; shift
  local log="$LOG_DIR/$name.log"
  local t0=$SECONDS
  echo "== $name: $*"
  if "$@" >"$log" 2>&1; then
    local rc=0
  else
    local rc=$?
  fi
  local p f
  p=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s+=$4} END {print s+0}')
  f=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s+=$6} END {print s+0}')
  if grep -Eq 'tests? failed out of [0-9]+' "$log"; then
    local tot fl
    tot=$(grep -Eo 'failed out of [0-9]+' "$log" | tail -1 | awk '{print $4}')
    fl=$(grep -Eo '[0-9]+ tests? failed out of' "$log" | tail -1 | awk '{print $1}')
    p=$((p + tot - fl)); f=$((f + fl))
  fi
  local plain
  plain=$(grep -Eo '^[A-Za-z -]*:? ?[0-9]+ passed, [0-9]+ failed' "$log" | sed -E 's/.*[^0-9]([0-9]+) passed, ([0-9]+) failed/\1 \2/')
  if [ -n "$plain" ]; then
    while read -r pp ff; do p=$((p + pp)); f=$((f + ff)); done <<<"$plain"
  fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    if [ $rc -eq 0 ]; then p=1; else f=1; fi
  elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ $rc -eq 0 ]; then
    echo "   ok ($p passed, $((SECONDS - t0)) s)"
  else
    echo "   FAILED (rc=$rc, $f failed) — last lines of $log:"
    tail -n 40 "$log" | sed 's/^/   | /'
    failed_steps+=("$name")
  fi
}

# System packages the tests need (Debian names). Installs only what is missing.
bash scripts/ensure-deps.sh || { echo "could not install system dependencies"; exit 1; }

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets --features testing -- -D warnings
step rust-tests cargo test --workspace --features testing
# Broken intra-doc links and malformed docs fail; the doc examples run in
# rust-tests above (cargo test runs doc tests).
step rustdoc env RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps
step ctest2-layout cargo run -q -p tzstore-systest
step status-lists python3 scripts/check-status-lists.py
if [ -n "${CI:-}" ] && git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  step header-drift git diff --exit-code -- include/tzstore.h
fi

c_tests() {
  cargo build --features testing &&
  cmake -S tests/c -B target/c-tests -DTZSTORE_LIB_DIR="$ROOT/target/debug" -DTZSTORE_TESTING=ON &&
  cmake --build target/c-tests -j2 &&
  (cd target/c-tests && ctest --output-on-failure -j2)
}
step c-tests c_tests

if [ -x scripts/test-bindings.sh ]; then
  step bindings bash scripts/test-bindings.sh
fi
step install bash scripts/test-install.sh

echo
if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "failed steps: ${failed_steps[*]} (logs in $LOG_DIR)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_steps[@]} -eq 0 ]
