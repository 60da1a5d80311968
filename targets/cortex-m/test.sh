#!/usr/bin/env bash
# The Cortex-M decoder under qemu-system-arm (issue #5), as CI runs it: a text-nn stream made by
# `arca compress -m text-embedded` decodes to the original on the emulated board, and damaged,
# truncated and foreign streams make the firmware report an error and exit non-zero (never hang:
# ARCA_QEMU_TIMEOUT bounds each run). ARCA (default target/debug/arca) is the PC binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
arca=${ARCA:-$root/target/debug/arca}
run="$root/targets/cortex-m/run.sh"
export ARCA_QEMU_TIMEOUT=${ARCA_QEMU_TIMEOUT:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$root/tests/data/canterbury/${ARCA_CORTEX_FILE:-grammar.lsp}"

"$arca" compress -q -m text-embedded "$src" -o "$work/good.arca"
start=$(date +%s)
"$run" "$work/good.arca" > "$work/out" 2> "$work/err"
cat "$work/err" >&2
cmp "$work/out" "$src"
# The RAM budget (64 KiB, statics and stack): the decoder's stack must leave at least 1 KiB.
check_stack() {
  local used
  used=$(sed -n 's/.*stack high-water \([0-9]*\) bytes.*/\1/p' "$1")
  if [ -z "$used" ] || [ "$used" -gt $((63 * 1024)) ]; then
    echo "cortex-m: stack high-water '${used}' bytes leaves under 1 KiB of the 64 KiB RAM" >&2
    exit 1
  fi
}
check_stack "$work/err"
echo "cortex-m: $(basename "$src") decoded exactly under qemu in $(( $(date +%s) - start )) s"

# Device text (issue #22): the first ARCA_CORTEX_MIXED_BYTES (default 4000) bytes of each file of
# ../shared/data/mixed/eval (JSON, changelogs, C headers, man pages, Python), in one stream,
# decode exactly on the board too: 20,000 bytes in one block, so the firmware's 16 KiB buffer
# wraps as the ring of history (text-nn revision 3). Skipped with a message where ../shared is
# absent.
mixed="$root/../shared/data/mixed/eval"
if [ -d "$mixed" ]; then
  for f in "$mixed"/*; do head -c "${ARCA_CORTEX_MIXED_BYTES:-4000}" "$f"; done > "$work/mixed"
  "$arca" compress -q -m text-embedded "$work/mixed" -o "$work/mixed.arca"
  start=$(date +%s)
  "$run" "$work/mixed.arca" > "$work/mixed.out" 2> "$work/err"
  cat "$work/err" >&2
  cmp "$work/mixed.out" "$work/mixed"
  check_stack "$work/err"
  echo "cortex-m: $(wc -c < "$work/mixed") bytes of mixed/eval decoded exactly under qemu in $(( $(date +%s) - start )) s"
else
  echo "cortex-m: $mixed not found; the device-text decode is skipped"
fi

# Refusals: exit status 1 and a message that says what is wrong.
expect_error() {
  local name=$1 pattern=$2 rc=0
  "$run" "$work/$name.arca" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
  if [ "$rc" -ne 1 ] || ! grep -q "$pattern" "$work/$name.err"; then
    echo "cortex-m: $name: expected exit 1 and '$pattern', got exit $rc:" >&2
    cat "$work/$name.err" >&2
    exit 1
  fi
  echo "cortex-m: $name refused: $(grep arca-firmware "$work/$name.err" | head -1)"
}
# A flipped bit in the coded data (the middle of a stream of one block, past its header and table).
python3 - "$work/good.arca" "$work/damaged.arca" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x08
open(sys.argv[2], "wb").write(b)
PY
expect_error damaged "corrupted"
head -c 1000 "$work/good.arca" > "$work/truncated.arca"
expect_error truncated "truncated"
"$arca" compress -q -m text-small --codec nn "$src" -o "$work/foreign.arca"
expect_error foreign "not this model"
printf 'not an arca stream' > "$work/garbage.arca"
expect_error garbage "bad magic"
