#!/usr/bin/env bash
# Installs tzstore into a temporary prefix with scripts/install.sh and builds
# and runs every example of README.md against that installed copy only, with
# the commands the README shows (its <!-- run: NAME --> blocks):
#   c      examples/c/chain.c with pkg-config (+ rpath to the prefix)
#   cpp    examples/cpp/chain.cpp with CMake find_package(tzstore)
#   ocaml  examples/ocaml/ with dune, the library found by findlib in the prefix
#   ocamlfind  the same chain.ml with ocamlfind alone
#   ocaml-lwt  examples/ocaml-lwt/ (tzstore.lwt, Octez's shapes) with dune
#   go     examples/go/ through a `replace` to a copy of bindings/go alone
#   rust   examples/chain.rs (cargo run --example, in the checkout)
# Each example is copied into a directory outside the repository, the
# environment holds no path into the repository (checked), and each
# program's output must be the chain the README describes. The C program's
# DT_NEEDED must be the SONAME, resolved by ldd into the prefix.
# Prints "install: N passed, N failed"; work kept in the printed directory
# on failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tzstore-install-test.XXXXXX")
case $work in "$root"/*)
  echo "test-install: the work directory $work is inside the repository; set TMPDIR elsewhere" >&2
  exit 1
  ;;
esac
prefix=$work/prefix
logs=$work/logs
mkdir -p "$logs" "$work/tmp"
passed=0
failed=0

# check NAME COMMAND...: runs the command, output in logs/NAME.log.
check() {
  local name=$1
  shift
  if "$@" >"$logs/$name.log" 2>&1; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name, log $logs/$name.log:"
    tail -n 30 "$logs/$name.log" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
major=${version%%.*}

install_prefix() {
  TZS_INSTALL_OCAML=1 bash "$root/scripts/install.sh" "$prefix" || return 1
  local f
  for f in bin/tzstore "lib/libtzstore.so.$version" lib/libtzstore.a include/tzstore.h \
    include/tzstore.hpp include/tzstore_block_store.hpp lib/pkgconfig/tzstore.pc \
    lib/cmake/tzstore/tzstoreConfig.cmake lib/cmake/tzstore/tzstoreConfigVersion.cmake \
    lib/ocaml/tzstore/META; do
    [ -e "$prefix/$f" ] || { echo "missing $prefix/$f"; return 1; }
  done
  [ "$(readlink "$prefix/lib/libtzstore.so.$major")" = "libtzstore.so.$version" ] &&
    [ "$(readlink "$prefix/lib/libtzstore.so")" = "libtzstore.so.$major" ] ||
    { echo "symlinks wrong:"; ls -l "$prefix/lib"; return 1; }
  readelf -d "$prefix/lib/libtzstore.so.$version" | grep -F "Library soname: [libtzstore.so.$major]" ||
    { echo "no SONAME libtzstore.so.$major"; return 1; }
  local v
  v=$(sed -n 's/^#define TZS_VERSION_STRING "\(.*\)"$/\1/p' "$prefix/include/tzstore.h")
  [ "$v" = "$version" ] || { echo "header TZS_VERSION_STRING '$v' != Cargo.toml '$version'"; return 1; }
  "$prefix/bin/tzstore" --help >/dev/null || { echo "the installed CLI does not run"; return 1; }
  # Nothing installed may point back into the source tree.
  if grep -rlF "$root" "$prefix/lib/pkgconfig" "$prefix/lib/cmake" "$prefix/lib/ocaml" \
    "$prefix/include"; then
    echo "the files above name the source tree $root"
    return 1
  fi
}

# A clean environment: only the prefix, nothing of the repository.
env_for_examples() {
  unset CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH LIBRARY_PATH LD_LIBRARY_PATH TZSTORE_SOURCE \
    CGO_CFLAGS CGO_LDFLAGS CMAKE_PREFIX_PATH OCAMLPATH
  export PREFIX=$prefix
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig OCAMLPATH=$prefix/lib/ocaml
  export TMPDIR=$work/tmp
  # Go: no network, no state outside the work directory.
  export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GOENV=off GOCACHE=$work/gocache GOPATH=$work/gopath
  export XDG_CACHE_HOME=$work/cache
  # The examples run from their own directories; the current one is the
  # work directory so the check below does not see the checkout in PWD.
  cd "$work" || return 1
  unset OLDPWD
  if env | grep -F "$root"; then
    echo "the environment above names the source tree $root"
    return 1
  fi
}

# The chain every example stores, as it prints it (after its version line).
expected_chain() {
  cat <<'OUT'
stored levels 0..3
0 below the head: level 3, "block 3"
2 below the head: level 1, "block 1"
unknown hash: not found
OUT
}

# run_example NAME DIR: runs README's run block NAME in DIR and compares
# what the program printed with the chain.
run_example() {
  local name=$1 dir=$2 commands out
  commands=$(bash "$root/scripts/check-readme-examples.sh" --run "$name") || return 1
  echo "== in $dir:"
  echo "$commands"
  out=$(cd "$dir" && bash -euo pipefail -c "$commands") || { echo "$out"; return 1; }
  echo "== output:"
  echo "$out"
  # The program's output starts at its version line; compilers print before.
  local printed
  printed=$(awk -v v="tzstore $version" 'index($0, v) == 1 { buf = ""; found = 1; next }
    found { buf = buf $0 "\n" } END { if (!found) exit 1; printf "%s", buf }' <<<"$out") ||
    { echo "no line starting with 'tzstore $version'"; return 1; }
  diff -u <(expected_chain) <(printf '%s\n' "$printed")
}

# no_source_tree FILE: FILE's dynamic section names nothing in the repository.
no_source_tree() {
  if readelf -d "$1" | grep -F "$root"; then
    echo "$1 carries a path into the source tree"
    return 1
  fi
}

c_example() {
  mkdir -p "$work/c" && cp "$root/examples/c/chain.c" "$work/c/" &&
    run_example c "$work/c" || return 1
  # The header's TZS_VERSION_STRING and the library's tzs_version() agree.
  (cd "$work/c" && ./chain "$work/tmp/c-version") | grep -Fx "tzstore $version (header $version)" ||
    { echo "the C example does not print 'tzstore $version (header $version)'"; return 1; }
  no_source_tree "$work/c/chain" || return 1
  echo "== readelf -d / ldd of the C example:"
  readelf -d "$work/c/chain" | grep -E 'NEEDED|RUNPATH|RPATH'
  readelf -d "$work/c/chain" | grep -F "Shared library: [libtzstore.so.$major]" ||
    { echo "DT_NEEDED is not libtzstore.so.$major"; return 1; }
  ldd "$work/c/chain" | grep libtzstore
  ldd "$work/c/chain" | grep -F "libtzstore.so.$major => $prefix/lib/libtzstore.so.$major" ||
    { echo "ldd does not resolve libtzstore.so.$major into $prefix/lib"; return 1; }
}

cpp_example() {
  mkdir -p "$work/cpp" && cp "$root/examples/cpp/chain.cpp" "$root/examples/cpp/CMakeLists.txt" "$work/cpp/" &&
    run_example cpp "$work/cpp" || return 1
  no_source_tree "$work/cpp/build/chain" || return 1
  ldd "$work/cpp/build/chain" | grep -F "$prefix/lib/libtzstore.so.$major"
}

ocaml_example() {
  mkdir -p "$work/ocaml" &&
    cp "$root/examples/ocaml/dune-project" "$root/examples/ocaml/dune" "$root/examples/ocaml/chain.ml" "$work/ocaml/" &&
    ocamlfind query tzstore | grep -Fx "$prefix/lib/ocaml/tzstore" || return 1
  run_example ocaml "$work/ocaml" || return 1
  # The binding's stubs link the installed library, found through the
  # rpath the package records (no LD_LIBRARY_PATH), never the source tree.
  no_source_tree "$work/ocaml/_build/default/chain.exe" || return 1
  ldd "$work/ocaml/_build/default/chain.exe" |
    grep -F "libtzstore.so.$major => $prefix/lib/libtzstore.so.$major" ||
    { echo "the OCaml example does not load $prefix/lib/libtzstore.so.$major"; return 1; }
}

ocaml_lwt_example() {
  mkdir -p "$work/ocaml-lwt" &&
    cp "$root/examples/ocaml-lwt/dune-project" "$root/examples/ocaml-lwt/dune" \
      "$root/examples/ocaml-lwt/chain_lwt.ml" "$work/ocaml-lwt/" &&
    ocamlfind query tzstore.lwt | grep -Fx "$prefix/lib/ocaml/tzstore/lwt" || return 1
  run_example ocaml-lwt "$work/ocaml-lwt"
}

ocamlfind_example() {
  mkdir -p "$work/ocamlfind" && cp "$root/examples/ocaml/chain.ml" "$work/ocamlfind/" &&
    run_example ocamlfind "$work/ocamlfind"
}

# The README's go.mod replaces the module with ../tzstore/bindings/go: a
# checkout beside the program. Here that checkout holds bindings/go alone.
go_example() {
  mkdir -p "$work/tzstore/bindings" "$work/chain-go" &&
    cp -r "$root/bindings/go" "$work/tzstore/bindings/go" &&
    cp "$root/examples/go/go.mod" "$root/examples/go/main.go" "$work/chain-go/" &&
    run_example go "$work/chain-go" || return 1
  no_source_tree "$work/chain-go/chain" || return 1
  ldd "$work/chain-go/chain" | grep -F "$prefix/lib/libtzstore.so.$major"
}

# Rust uses the crate's source, not the installed library: run in the checkout.
rust_example() {
  run_example rust "$root"
}

check install install_prefix
if [ "$failed" -eq 0 ] && env_for_examples; then
  check c c_example
  check cpp cpp_example
  check ocaml ocaml_example
  check ocaml-lwt ocaml_lwt_example
  check ocamlfind ocamlfind_example
  check go go_example
  check rust rust_example
else
  failed=$((failed + 1))
fi
echo "install: $passed passed, $failed failed"
if [ "$failed" -eq 0 ]; then
  rm -rf "$work"
else
  echo "work kept in $work"
  exit 1
fi
