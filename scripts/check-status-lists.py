#!/usr/bin/env python3
"""Checks that the bindings list exactly the statuses of include/tzstore.h.

The statuses come from one table in src/error.rs; tests/status_table.rs
checks the header against it. This script checks the bindings against the
header, so a status added in Rust fails the test command until the Go,
OCaml and C++ bindings know it:

* Go (bindings/go/errors.go): a `Status<Name> Status = C.TZS_<NAME>`
  constant per status, an `Err<Name>` sentinel per failure status, and the
  sentinel registered in `init`'s list.
* OCaml (bindings/ocaml/src/error.ml and error.mli): a constructor per
  failure status in `type status`, and a `(<Ctor>, <n>, "TZS_<NAME>")` row
  in `table`.
* C++ (bindings/cpp/*.hpp): no list of its own; it must take names from
  `tzs_status_name` (checked: no hard-coded status name table).

Usage: scripts/check-status-lists.py [REPO_ROOT]. Exit 0 when every list
agrees, 1 with one line per difference otherwise.
"""

import re
import sys
from pathlib import Path

ACRONYMS = {"IO", "OK"}


def header_statuses(header: str):
    """The run of `#define TZS_<NAME> <n>` starting at TZS_OK 0, counting up."""
    defines = re.findall(r"^#define TZS_([A-Z0-9_]+) (\d+)\s*$", header, re.M)
    try:
        start = defines.index(("OK", "0"))
    except ValueError:
        sys.exit("check-status-lists: no `#define TZS_OK 0` in the header")
    out = []
    for i, (name, n) in enumerate(defines[start:]):
        if int(n) != i:
            break
        out.append((i, name))
    return out


def go_name(name: str) -> str:
    return "".join(w if w in ACRONYMS else w.capitalize() for w in name.split("_"))


def ocaml_name(name: str) -> str:
    return name.capitalize()


def check_go(root: Path, statuses, problems):
    path = root / "bindings/go/errors.go"
    src = path.read_text()
    consts = dict(re.findall(r"^\s*Status(\w+)\s+Status = C\.TZS_([A-Z0-9_]+)\s*$", src, re.M))
    sentinels = dict(re.findall(r"^\s*Err(\w+)\s*= &Error\{Status: Status(\w+)\}", src, re.M))
    init = re.search(r"for _, e := range \[\]\*Error\{(.*?)\}", src, re.S)
    registered = set(re.findall(r"Err(\w+)", init.group(1))) if init else set()
    want_consts = {go_name(n): n for _, n in statuses}
    want_sentinels = {go_name(n) for _, n in statuses if n != "OK"}
    for g, n in sorted(want_consts.items()):
        if consts.get(g) != n:
            problems.append(f"{path}: missing `Status{g} Status = C.TZS_{n}`")
    for g in sorted(set(consts) - set(want_consts)):
        problems.append(f"{path}: Status{g} is not a status of the header")
    for g in sorted(want_sentinels):
        if sentinels.get(g) != g:
            problems.append(f"{path}: missing sentinel `Err{g} = &Error{{Status: Status{g}}}`")
        if g not in registered:
            problems.append(f"{path}: Err{g} is not registered in init's sentinel list")
    for g in sorted((set(sentinels) | registered) - want_sentinels):
        problems.append(f"{path}: Err{g} is not a failure status of the header")


def check_ocaml(root: Path, statuses, problems):
    failures = [(n, name) for n, name in statuses if name != "OK"]
    for path in [root / "bindings/ocaml/src/error.ml", root / "bindings/ocaml/src/error.mli"]:
        src = re.sub(r"\(\*.*?\*\)", "", path.read_text(), flags=re.S)
        m = re.search(r"type status =(.*?)(?:\n\s*\n|\ntype |\nval )", src, re.S)
        if not m:
            problems.append(f"{path}: no `type status`")
            continue
        ctors = re.findall(r"\|\s*([A-Z]\w*)", m.group(1))
        want = [ocaml_name(name) for _, name in failures] + ["Unknown"]
        if ctors != want:
            problems.append(f"{path}: type status lists {ctors}, the header {want}")
    path = root / "bindings/ocaml/src/error.ml"
    rows = re.findall(r'\((\w+), (\d+), "TZS_([A-Z0-9_]+)"\)', path.read_text())
    want_rows = [(ocaml_name(name), str(n), name) for n, name in failures]
    if rows != want_rows:
        problems.append(f"{path}: table rows {rows}, the header {want_rows}")


def check_cpp(root: Path, statuses, problems):
    names = {f'"TZS_{name}"' for _, name in statuses}
    for path in sorted((root / "bindings/cpp").glob("*.hpp")):
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("//")
        )
        hard = sorted(n for n in names if n in code)
        if hard:
            problems.append(f"{path}: hard-coded status names {hard} (use tzs_status_name)")


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    statuses = header_statuses((root / "include/tzstore.h").read_text())
    problems = []
    check_go(root, statuses, problems)
    check_ocaml(root, statuses, problems)
    check_cpp(root, statuses, problems)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"check-status-lists: {len(statuses)} statuses agree in Go, OCaml and C++")


if __name__ == "__main__":
    main()
