#!/usr/bin/env bash
# trustctl edits a state disk image offline: add (validated, duplicates refused), list, rm.
set -euo pipefail
trustctl=$1 pki=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
img="$dir/state.img"
mke2fs -q -F -t ext4 "$img" 16M
t() { "$trustctl" --image "$img" --pkg "$dir/nopkg" "$@"; }
t add "$pki/ca.pem" | grep -q '^added '
t list | grep -q ' state /CN=capnet test root'
if t add "$pki/ca.pem"; then echo "duplicate accepted"; exit 1; fi
if t add "$pki/good.pem"; then echo "a leaf was installed as a root"; exit 1; fi
fp=$(t list | cut -d' ' -f1)
t rm "$fp" | grep -q '^removed '
[[ -z "$(t list)" ]] || { echo "root still listed after rm"; exit 1; }
echo "trustctl --image: add, duplicate refused, non-CA refused, list, rm: ok"
