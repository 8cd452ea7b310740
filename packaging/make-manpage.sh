#!/usr/bin/env bash
# Writes ballast.1.gz, the manual page, from the binary's own --help texts (help2man for the
# page, each command's --help under COMMANDS), so the page is never out of date.
#   packaging/make-manpage.sh BALLAST_BINARY OUTPUT.1.gz
set -euo pipefail
bin=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
include=$(mktemp)
trap 'rm -f "$include" "${out%.gz}"' EXIT

# roff-safe preformatted text: backslashes escaped, lines that start with . or ' protected.
roff() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }

{
  echo "[COMMANDS]"
  for command in $("$bin" --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1}'); do
    echo ".SS \"ballast $command\""
    echo ".nf"
    "$bin" "$command" --help | roff
    echo ".fi"
  done
  cat "$here/manpage.h2m"
} >"$include"

# Reproducible: the date of the commit built, not of the build.
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)
  export SOURCE_DATE_EPOCH
fi
help2man --no-info --section 1 --source "ballast" --manual "ballast manual" \
  --name "a GitOps reconciler with its own lightweight cluster" \
  --include "$include" --output "${out%.gz}" "$bin"
gzip -9n -c "${out%.gz}" >"$out"
