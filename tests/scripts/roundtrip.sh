#!/usr/bin/env bash
# One-off round trip of big files through the release `arca` binary: compress, decompress,
# compare byte for byte, and print a markdown row per file (bytes, compressed bytes, bits per
# byte, compress and decompress KB/s with every core). Used for the large and Silesia files of
# ../shared/data/eval, which are too slow for the test suite:
#
#   tests/scripts/roundtrip.sh ../shared/data/eval/large/* ../shared/data/eval/silesia/*
#   ARCA=path/to/arca tests/scripts/roundtrip.sh FILES...   # skip the build, use that binary
#
# Exits non-zero on the first file that does not come back exactly.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ -z "${ARCA:-}" ]]; then
    (cd "$root" && cargo build --release -p arca-cli)
    ARCA="${CARGO_TARGET_DIR:-$root/target}/release/arca"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
echo "| file | bytes | arca bytes | bits/byte | compress KB/s | decompress KB/s | exact |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
for f in "$@"; do
    n=$(stat -c %s "$f")
    t0=$(now)
    "$ARCA" compress -q -c "$f" > "$tmp/x.arca"
    t1=$(now)
    "$ARCA" decompress -q -c "$tmp/x.arca" > "$tmp/x.out"
    t2=$(now)
    c=$(stat -c %s "$tmp/x.arca")
    if cmp -s "$tmp/x.out" "$f"; then ok=yes; else ok=NO; fi
    awk -v f="$(basename "$f")" -v n="$n" -v c="$c" -v a="$t0" -v b="$t1" -v d="$t2" -v ok="$ok" \
        'BEGIN { printf "| %s | %d | %d | %.3f | %.1f | %.1f | %s |\n", f, n, c, (n ? 8*c/n : 0), n/1000/(b-a), n/1000/(d-b), ok }'
    [[ "$ok" == yes ]] || { echo "round trip of $f FAILED" >&2; exit 1; }
done
