#!/usr/bin/env bash
# Installs, from the distribution's packages (Debian 12), the toolchains the
# binding and install tests need when they are missing: C/C++ (gcc, g++,
# make, cmake, pkg-config, valgrind, binutils for readelf), Go (golang-go),
# OCaml (ocaml-nox, ocaml-findlib, ocaml-dune, libctypes-ocaml-dev for
# ctypes.foreign, liblwt-ocaml-dev for tzstore.lwt). Rust (cargo) is not a
# Debian package here: it must already be installed (rustup).
# Runs `apt-get update` at most once, only when something is missing.
set -euo pipefail

missing=()
need_cmd() { # need_cmd COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need_cmd gcc gcc
need_cmd g++ g++
need_cmd make make
need_cmd cmake cmake
need_cmd pkg-config pkg-config
need_cmd readelf binutils
need_cmd valgrind valgrind
need_cmd go golang-go
need_cmd ocamlfind ocaml-findlib
need_cmd ocamlopt ocaml-nox
need_cmd dune ocaml-dune
if ! command -v ocamlfind >/dev/null 2>&1 || ! ocamlfind query ctypes.foreign >/dev/null 2>&1; then
  missing+=(libctypes-ocaml-dev libffi-dev)
fi
# tzstore.lwt (bindings/ocaml/lwt) and its test.
if ! command -v ocamlfind >/dev/null 2>&1 || ! ocamlfind query lwt.unix >/dev/null 2>&1; then
  missing+=(liblwt-ocaml-dev)
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "ensure-deps: cargo not found; install Rust (https://rustup.rs)" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

# Deduplicate while keeping order.
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "ensure-deps: installing ${pkgs[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ensure-deps: need root or sudo to install ${pkgs[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
# env passes DEBIAN_FRONTEND through sudo, which resets the environment.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends "${pkgs[@]}"
