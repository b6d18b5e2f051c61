#!/usr/bin/env bash
# Checks that every code block of bindings/README.md preceded by a marker
#   <!-- example: PATH -->
# holds exactly the file PATH (relative to the repository), so the README
# shows the examples the tests compile and run. --update rewrites the blocks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
readme=$root/bindings/README.md

expected=$(awk -v root="$root" '
  /^<!-- example: [^ ]+ -->$/ {
    print
    file = root "/" $3
    if ((getline) <= 0 || $0 !~ /^```/) { print "marker not followed by a code block: " file > "/dev/stderr"; exit 1 }
    print
    while ((getline line < file) > 0) print line
    close(file)
    while ((getline) > 0 && $0 != "```") { }
    print "```"
    next
  }
  { print }
' "$readme")

if [ "${1:-}" = --update ]; then
  printf '%s\n' "$expected" >"$readme"
  exit 0
fi
if ! diff -u "$readme" <(printf '%s\n' "$expected"); then
  echo "bindings/README.md examples differ from their files; run $0 --update" >&2
  exit 1
fi
