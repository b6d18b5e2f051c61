#!/usr/bin/env bash
# Builds the release library and installs it under PREFIX:
#   lib/libtzstore.so, lib/libtzstore.a, include/tzstore.h, include/tzstore*.hpp,
#   lib/cmake/tzstore/tzstoreConfig.cmake + tzstoreConfigVersion.cmake,
#   lib/pkgconfig/tzstore.pc
# Usage: scripts/install.sh PREFIX
# Set TZS_SKIP_BUILD=1 to install an already built target/release.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

if [ "${TZS_SKIP_BUILD:-0}" != 1 ]; then
  (cd "$root" && cargo build --release --lib --quiet)
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "install.sh: no version in Cargo.toml" >&2; exit 1; }

install -d "$prefix/lib/cmake/tzstore" "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$target/release/libtzstore.so" "$prefix/lib/libtzstore.so"
install -m 0644 "$target/release/libtzstore.a" "$prefix/lib/libtzstore.a"
install -m 0644 "$root/include/tzstore.h" "$prefix/include/tzstore.h"
install -m 0644 "$root"/bindings/cpp/*.hpp "$prefix/include/"
install -m 0644 "$root/cmake/tzstoreConfig.cmake" "$prefix/lib/cmake/tzstore/tzstoreConfig.cmake"
sed "s|@VERSION@|$version|g" "$root/cmake/tzstoreConfigVersion.cmake.in" \
  > "$prefix/lib/cmake/tzstore/tzstoreConfigVersion.cmake"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$root/cmake/tzstore.pc.in" \
  > "$prefix/lib/pkgconfig/tzstore.pc"
echo "installed tzstore $version into $prefix"
