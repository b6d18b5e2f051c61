#!/bin/sh
# Writes c_flags.sexp (where tzstore.h is) and c_library_flags.sexp (how to
# link libtzstore, with an rpath to its directory) for src/dune, from the
# first of:
#   $TZSTORE_SOURCE   a checkout: its include/ and target/release (built
#                     with cargo build --release), for the tests;
#   pkg-config tzstore  an installed copy (scripts/install.sh PREFIX, then
#                     PKG_CONFIG_PATH=PREFIX/lib/pkgconfig);
#   the checkout holding this build, when the build directory is the
#                     default bindings/ocaml/_build.
# Run by dune in the build context's src (_build/default/src, the checkout
# five levels up when _build is bindings/ocaml/_build).
set -eu

sexp() {
  printf '('
  for a in "$@"; do printf ' "%s"' "$a"; done
  printf ' )\n'
}

from_checkout() {
  [ -f "$1/include/tzstore.h" ] || { echo "c_flags.sh: no $1/include/tzstore.h" >&2; exit 1; }
  [ -f "$1/target/release/libtzstore.so" ] || {
    echo "c_flags.sh: no $1/target/release/libtzstore.so (run cargo build --release there)" >&2
    exit 1
  }
  sexp "-I$1/include" >c_flags.sexp
  sexp "-L$1/target/release" -ltzstore "-Wl,-rpath,$1/target/release" >c_library_flags.sexp
}

if [ -n "${TZSTORE_SOURCE:-}" ]; then
  from_checkout "$(cd "$TZSTORE_SOURCE" && pwd)"
elif pkg-config --exists tzstore 2>/dev/null; then
  # shellcheck disable=SC2046 # one flag per word
  sexp $(pkg-config --cflags tzstore) >c_flags.sexp
  # shellcheck disable=SC2046
  sexp $(pkg-config --libs tzstore) "-Wl,-rpath,$(pkg-config --variable=libdir tzstore)" \
    >c_library_flags.sexp
elif [ -f ../../../../../include/tzstore.h ]; then
  from_checkout "$(cd ../../../../.. && pwd)"
else
  echo "c_flags.sh: tzstore not found: install it (scripts/install.sh PREFIX) and set" \
    "PKG_CONFIG_PATH=PREFIX/lib/pkgconfig, or set TZSTORE_SOURCE to a built checkout" >&2
  exit 1
fi
