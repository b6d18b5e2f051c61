#!/usr/bin/env bash
# Head-to-head benchmark of tzstore against LMDB and RocksDB on a node's
# workloads (benches/compare/README.md). Not part of the test suite.
# Installs nothing: needs liblmdb-dev and librocksdb-dev.
#
# Environment: TZS_BENCH_DIR (where the temporary directory goes, default
# /tmp), TZS_COMPARE_KEYS (default 1000000), TZS_COMPARE_BLOCKS (default
# 10000), TZS_COMPARE_READS (default 100000), TZS_COMPARE_VALUES (2 KiB
# values of workload 5, default 50000), TZS_COMPARE_GROW (sizes workload 7
# grows the index through, comma-separated; default 1000000,2000000,4000000,
# 0 skips it; larger sizes make a long run, see benches/compare/README.md),
# TZS_COMPARE_ZSTD_LEVEL (zstd level of the cemented metadata of workload 6,
# default 3; 0 stores it uncompressed, as LMDB and RocksDB hold it).
#
# The run's tables (workloads, and the machine's limits measured in the same
# run) replace the block between the bench-compare markers in BENCHMARKS.md,
# and docs/bench-compare.svg is redrawn, unless TZS_COMPARE_NO_RECORD=1.
# TZS_COMPARE_ONLY (comma-separated: index, blocks, levels, values, grow,
# limits) runs some workloads only, for profiling; such a run is never
# recorded.
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
cc -O2 -Wall -Wextra -pthread -o "$bin" benches/compare/compare.c -I"$ROOT/include" \
  -L"$ROOT/target/release" -Wl,-rpath,"$ROOT/target/release" -ltzstore -llmdb -lrocksdb -lm

grow=${TZS_COMPARE_GROW:-1000000,2000000,4000000}
base=${TZS_BENCH_DIR:-/tmp}
dir=$(mktemp -d "$base/tzs-compare.XXXXXX")
trap 'rm -rf "$dir"' EXIT

out="$dir/out.txt"
record=1
[ "${TZS_COMPARE_NO_RECORD:-0}" = 1 ] && record=0
[ -n "${TZS_COMPARE_ONLY:-}" ] && record=0
svg=""
[ $record = 1 ] && svg="$dir/chart.svg"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
    "$(df -T "$dir" | awk 'NR==2 {print $2 " on " $1}')"
  mkdir "$dir/run"
  TZS_COMPARE_SVG="$svg" TZS_COMPARE_GROW="$grow" "$bin" "$dir/run" "${TZS_COMPARE_KEYS:-1000000}" "${TZS_COMPARE_BLOCKS:-10000}" \
    "${TZS_COMPARE_READS:-100000}" "${TZS_COMPARE_VALUES:-50000}"
} | tee "$out"

if [ $record = 1 ]; then
  cp "$svg" docs/bench-compare.svg
  # The tables and the lines that say when, where and under what load.
  {
    echo '<!-- bench-compare:begin -->'
    echo
    echo "Command: \`scripts/bench-compare.sh\` (keys ${TZS_COMPARE_KEYS:-1000000}, blocks" \
      "${TZS_COMPARE_BLOCKS:-10000}, reads ${TZS_COMPARE_READS:-100000}, values ${TZS_COMPARE_VALUES:-50000}," \
      "grow $grow, cemented metadata zstd level ${TZS_COMPARE_ZSTD_LEVEL:-3})."
    echo
    grep -E '^(date|machine|load|tzstore [0-9])' "$out" | sed 's/$/  /'
    echo
    # The tables, a blank line after each.
    awk '/^\|/ { print; intable = 1; next } intable { print ""; intable = 0 }' "$out"
    echo
    echo '![ops/s per workload per engine](docs/bench-compare.svg)'
    echo
    echo '<!-- bench-compare:end -->'
  } >"$dir/block.md"
  python3 - "$dir/block.md" <<'PY'
import re, sys
block = open(sys.argv[1]).read().rstrip("\n")
text = open("BENCHMARKS.md").read()
pattern = re.compile(r"<!-- bench-compare:begin -->.*?<!-- bench-compare:end -->", re.S)
if not pattern.search(text):
    sys.exit("BENCHMARKS.md has no bench-compare markers")
open("BENCHMARKS.md", "w").write(pattern.sub(lambda _: block, text, count=1))
PY
  echo "recorded in BENCHMARKS.md (bench-compare block) and docs/bench-compare.svg"
fi
