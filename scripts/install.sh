#!/usr/bin/env bash
# Builds tzstore in release mode and installs it under PREFIX:
#   bin/tzstore                               the command-line tool
#   lib/libtzstore.so.X.Y.Z                   the shared library, SONAME libtzstore.so.X,
#   lib/libtzstore.so.X -> libtzstore.so.X.Y.Z  with the usual symlinks
#   lib/libtzstore.so -> libtzstore.so.X
#   lib/libtzstore.a                          the static library
#   include/tzstore.h                         the C header (TZS_VERSION_* macros)
#   include/tzstore*.hpp                      the header-only C++17 binding
#   lib/pkgconfig/tzstore.pc                  pkg-config: tzstore
#   lib/cmake/tzstore/                        CMake: find_package(tzstore)
#   lib/ocaml/tzstore/                        OCaml (findlib): OCAMLPATH=PREFIX/lib/ocaml,
#                                             only when dune and ctypes are installed
# Usage: scripts/install.sh PREFIX
# Set TZS_SKIP_BUILD=1 to install an already built target/release (library
# and CLI). Set TZS_INSTALL_OCAML=0 to skip the OCaml library, =1 to fail
# when it cannot be built (default: built when its toolchain is present).
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

# The CLI's dependencies sit behind a `cli` feature when the manifest has
# one; naming it is harmless when it is also a default feature.
cli_features=()
if grep -Eq '^cli *=' "$root/Cargo.toml"; then
  cli_features=(--features cli)
fi
if [ "${TZS_SKIP_BUILD:-0}" != 1 ]; then
  # The CLI first: building it may rebuild the library with the CLI's
  # features, and the library installed is the one built last.
  (cd "$root" && cargo build --release --bin tzstore "${cli_features[@]}" --quiet &&
    cargo build --release --lib --quiet)
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "install.sh: no version in Cargo.toml" >&2; exit 1; }
major=${version%%.*}
for f in libtzstore.so libtzstore.a tzstore; do
  [ -f "$target/release/$f" ] || {
    echo "install.sh: $target/release/$f is missing (build it, or unset TZS_SKIP_BUILD)" >&2
    exit 1
  }
done
# A library without the SONAME would make programs record libtzstore.so,
# which only the development symlink provides.
if command -v readelf >/dev/null 2>&1 &&
  ! readelf -d "$target/release/libtzstore.so" | grep -q "SONAME.*\[libtzstore.so.$major\]"; then
  echo "install.sh: $target/release/libtzstore.so has no SONAME libtzstore.so.$major (stale build?)" >&2
  exit 1
fi

install -d "$prefix/bin" "$prefix/lib/cmake/tzstore" "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$target/release/tzstore" "$prefix/bin/tzstore"
install -m 0755 "$target/release/libtzstore.so" "$prefix/lib/libtzstore.so.$version"
ln -sfn "libtzstore.so.$version" "$prefix/lib/libtzstore.so.$major"
ln -sfn "libtzstore.so.$major" "$prefix/lib/libtzstore.so"
install -m 0644 "$target/release/libtzstore.a" "$prefix/lib/libtzstore.a"
install -m 0644 "$root/include/tzstore.h" "$prefix/include/tzstore.h"
install -m 0644 "$root"/bindings/cpp/*.hpp "$prefix/include/"
sed "s|@SOMAJOR@|$major|g" "$root/cmake/tzstoreConfig.cmake.in" \
  >"$prefix/lib/cmake/tzstore/tzstoreConfig.cmake"
sed "s|@VERSION@|$version|g" "$root/cmake/tzstoreConfigVersion.cmake.in" \
  >"$prefix/lib/cmake/tzstore/tzstoreConfigVersion.cmake"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@SOMAJOR@|$major|g" \
  "$root/cmake/tzstore.pc.in" \
  >"$prefix/lib/pkgconfig/tzstore.pc"
echo "installed tzstore $version (C, C++, CMake, pkg-config, CLI) into $prefix"

# The OCaml library is built here, against the pkg-config file just
# installed: its C stubs compile against PREFIX/include/tzstore.h and link
# with -ltzstore and an rpath to PREFIX/lib (bindings/ocaml/src/c_flags.sh;
# TZSTORE_SOURCE, which would build against the checkout, is unset).
ocaml=${TZS_INSTALL_OCAML:-auto}
if [ "$ocaml" = auto ]; then
  if command -v dune >/dev/null 2>&1 && command -v ocamlfind >/dev/null 2>&1 &&
    ocamlfind query ctypes.foreign ctypes.stubs >/dev/null 2>&1; then
    ocaml=1
  else
    ocaml=0
    echo "skipped the OCaml library: needs dune, ocaml-findlib and libctypes-ocaml-dev" >&2
  fi
fi
if [ "$ocaml" = 1 ]; then
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  if ! out=$(cd "$root/bindings/ocaml" && unset TZSTORE_SOURCE &&
    PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
      dune build --build-dir "$build" -p tzstore @install 2>&1 &&
    dune install --root . --build-dir "$build" --prefix "$prefix" \
      --libdir "$prefix/lib/ocaml" tzstore 2>&1); then
    printf '%s\n' "$out" >&2
    echo "install.sh: building or installing the OCaml library failed" >&2
    exit 1
  fi
  [ -f "$prefix/lib/ocaml/tzstore/META" ] || {
    echo "install.sh: the OCaml library was not installed" >&2
    exit 1
  }
  echo "installed the OCaml library tzstore into $prefix/lib/ocaml (OCAMLPATH=$prefix/lib/ocaml)"
fi
