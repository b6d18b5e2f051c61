#!/usr/bin/env bash
# Keeps the READMEs equal to the files the tests build and run.
#
# In README.md and bindings/README.md, every code block preceded by a marker
#   <!-- example: PATH -->
# must hold exactly the file PATH (relative to the repository). Without
# arguments this checks both READMEs; --update rewrites their blocks from
# the files.
#
# In README.md, a shell block preceded by
#   <!-- run: NAME -->
# holds the commands that build and run example NAME; `--run NAME` prints
# them (scripts/test-install.sh runs them as shown) and fails if there is no
# such block.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
readmes=("$root/README.md" "$root/bindings/README.md")

# expected README: the README with each marked block replaced by its file.
expected() {
  awk -v root="$root" '
    /^<!-- example: [^ ]+ -->$/ {
      print
      file = root "/" $3
      if ((getline line < file) <= 0) { print "missing example file: " file > "/dev/stderr"; exit 1 }
      close(file)
      if ((getline) <= 0 || $0 !~ /^```/) { print "marker not followed by a code block: " file > "/dev/stderr"; exit 1 }
      print
      while ((getline line < file) > 0) print line
      close(file)
      while ((getline) > 0 && $0 != "```") { }
      print "```"
      next
    }
    { print }
  ' "$1"
}

if [ "${1:-}" = --run ]; then
  [ $# -eq 2 ] || { echo "usage: $0 --run NAME" >&2; exit 2; }
  awk -v name="$2" '
    $0 == "<!-- run: " name " -->" {
      if ((getline) <= 0 || $0 !~ /^```sh$/) { print "run marker " name " not followed by a sh block" > "/dev/stderr"; exit 1 }
      found = 1
      while ((getline) > 0 && $0 != "```") print
    }
    END { if (!found) { print "README.md has no <!-- run: " name " --> block" > "/dev/stderr"; exit 1 } }
  ' "$root/README.md"
  exit
fi

status=0
for readme in "${readmes[@]}"; do
  want=$(expected "$readme")
  if [ "${1:-}" = --update ]; then
    printf '%s\n' "$want" >"$readme"
  elif ! diff -u "$readme" <(printf '%s\n' "$want"); then
    echo "${readme#"$root"/}: examples differ from their files; run $0 --update" >&2
    status=1
  fi
done
# A README without markers would pass vacuously.
for readme in "${readmes[@]}"; do
  grep -q '^<!-- example: ' "$readme" || { echo "${readme#"$root"/}: no example markers" >&2; status=1; }
done
exit $status
