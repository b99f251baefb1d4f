#!/bin/sh
# The C sources of wire/, crypto/, node/ and cli/ as the repository's
# .clang-format writes them. Fix with: clang-format -i <file>.
# Usage: check_format.sh SOURCE_ROOT CLANG_FORMAT
set -eu
root=$1
cf=$2
cd "$root"
files=$(find wire crypto node cli -name '*.[ch]' | sort)
# shellcheck disable=SC2086
exec "$cf" --dry-run -Werror $files
