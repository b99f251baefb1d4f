#!/bin/sh
# regen_check.sh GEN TARGET: runs a corpus generator into a scratch
# directory, then replays the fuzz target over what it wrote. Fails if the
# generator fails, writes nothing, or the target fails on its output.
set -eu
gen=$1 target=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$gen" "$dir/corpus"
"$target" "$dir/corpus"
