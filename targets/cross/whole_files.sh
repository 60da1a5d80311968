#!/usr/bin/env bash
# Whole-file cross-architecture check, too slow for CI (about 45 minutes of emulated CPU per MB
# in both directions on aarch64): for each file, the host's arca and the target's arca (under
# qemu) must write the same stream, and the target must decode the host's stream exactly.
#
#   targets/cross/whole_files.sh aarch64|armv7 HOST_ARCA TARGET_ARCA FILE...
#
# Prints one line per file as it finishes (so a long run reports as it goes) and exits non-zero
# if any file differs. Run two at once on two cores with disjoint file lists.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
case "${1:-}" in
    aarch64) target=aarch64-unknown-linux-gnu ;;
    armv7) target=armv7-unknown-linux-gnueabihf ;;
    *) echo "usage: $0 aarch64|armv7 HOST_ARCA TARGET_ARCA FILE..." >&2; exit 2 ;;
esac
host="$2"
foreign="$3"
shift 3
runner=$(sed -n "/^\[target\.$target\]/,/^\[/s/^runner = \[\(.*\)\]/\1/p" "$root/targets/cross/config.toml" | tr -d '",')
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0
for f in "$@"; do
    name=$(basename "$f")
    t0=$(date +%s)
    "$host" compress -q -c -T 1 "$f" > "$tmp/host.arca"
    # shellcheck disable=SC2086 # the runner is a command line
    $runner "$foreign" compress -q -c -T 1 "$f" > "$tmp/target.arca"
    t1=$(date +%s)
    if ! cmp -s "$tmp/host.arca" "$tmp/target.arca"; then
        echo "$name: FAIL: streams differ"; failed=1; continue
    fi
    # shellcheck disable=SC2086
    if ! $runner "$foreign" decompress -q -c -T 1 "$tmp/host.arca" | cmp -s - "$f"; then
        echo "$name: FAIL: the target decoded the host's stream wrongly"; failed=1; continue
    fi
    t2=$(date +%s)
    echo "$name: $(stat -c %s "$f") bytes -> $(stat -c %s "$tmp/host.arca"), same stream on $target;" \
        "target compress $((t1 - t0)) s, decompress $((t2 - t1)) s"
done
exit $failed
