#!/usr/bin/env bash
# Builds the C programs here with `pkg-config --cflags --libs tzstore`
# (shared, and static via Libs.private) against an installed prefix and runs
# them. Usage: run.sh PREFIX BUILDDIR
set -euo pipefail
prefix=$1
build=$2
here=$(cd "$(dirname "$0")" && pwd)
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags="-std=c11 -Wall -Wextra -Werror -O2"
libdir=$(pkg-config --variable=libdir tzstore)
# Static: libtzstore.a by name, then the private deps without -ltzstore.
static_deps=$(pkg-config --static --libs-only-l tzstore | sed 's/-ltzstore//')
mkdir -p "$build"
for prog in consumer example; do
  # shellcheck disable=SC2046
  gcc $cflags "$here/$prog.c" $(pkg-config --cflags --libs tzstore) \
    -Wl,-rpath,"$libdir" -o "$build/${prog}_shared"
  # shellcheck disable=SC2046,SC2086
  gcc $cflags "$here/$prog.c" $(pkg-config --cflags tzstore) "$libdir/libtzstore.a" \
    $static_deps -o "$build/${prog}_static"
done
if ldd "$build/consumer_static" | grep -q libtzstore; then
  echo "consumer_static is linked to libtzstore.so" >&2
  exit 1
fi
for bin in consumer_shared consumer_static example_shared example_static; do
  rm -rf "$build/work-$bin"
  mkdir -p "$build/work-$bin"
  echo "== $bin"
  "$build/$bin" "$build/work-$bin"
done
