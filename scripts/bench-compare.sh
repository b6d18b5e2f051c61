#!/usr/bin/env bash
# Head-to-head benchmark of tzstore against LMDB and RocksDB on a node's
# workloads (benches/compare/README.md). Not part of the test suite.
# Installs nothing: needs liblmdb-dev and librocksdb-dev.
#
# Environment: TZS_BENCH_DIR (where the temporary directory goes, default
# /tmp), TZS_COMPARE_KEYS (default 1000000), TZS_COMPARE_BLOCKS (default
# 10000), TZS_COMPARE_READS (default 100000), TZS_COMPARE_VALUES (2 KiB
# values of workload 5, default 50000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

missing=()
[ -f /usr/include/lmdb.h ] || missing+=(liblmdb-dev)
[ -f /usr/include/rocksdb/c.h ] || missing+=(librocksdb-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]}" >&2
  echo "install them with: apt-get install liblmdb-dev librocksdb-dev" >&2
  exit 1
fi

cargo build --release --quiet
bin="$ROOT/target/release/bench-compare"
cc -O2 -Wall -Wextra -o "$bin" benches/compare/compare.c -I"$ROOT/include" \
  -L"$ROOT/target/release" -Wl,-rpath,"$ROOT/target/release" -ltzstore -llmdb -lrocksdb

base=${TZS_BENCH_DIR:-/tmp}
dir=$(mktemp -d "$base/tzs-compare.XXXXXX")
trap 'rm -rf "$dir"' EXIT

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
  "$(df -T "$dir" | awk 'NR==2 {print $2 " on " $1}')"
"$bin" "$dir" "${TZS_COMPARE_KEYS:-1000000}" "${TZS_COMPARE_BLOCKS:-10000}" "${TZS_COMPARE_READS:-100000}" \
  "${TZS_COMPARE_VALUES:-50000}"
