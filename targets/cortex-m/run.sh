#!/usr/bin/env bash
# Decodes STREAM.arca on an emulated Cortex-M4 (qemu-system-arm, MPS2 AN386): builds the firmware
# with the stream linked in, runs it, and prints the decoded bytes on stdout. The firmware's
# statistics (bytes, instructions per byte, stack high-water mark) and any error go to stderr;
# the exit status is the firmware's (0 ok, 1 error: a damaged, truncated or foreign stream).
#
#   targets/cortex-m/run.sh alice29.txt.arca > alice29.txt
#
# The stream must be text-nn for the model in src/model.rs (make it with
# `arca compress -m text-embedded FILE`). Needs the thumbv7em-none-eabihf target and
# qemu-system-arm; ARCA_QEMU_TIMEOUT (seconds, default 3600) bounds the run, CARGO_TARGET_DIR
# (default targets/cortex-m/target) is where the firmware is built.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 STREAM.arca" >&2
  exit 2
fi
stream=$(realpath -- "$1")
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v qemu-system-arm >/dev/null; then
  echo "$0: qemu-system-arm not found (Debian: apt-get install qemu-system-arm)" >&2
  exit 2
fi
rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf \
  || rustup target add thumbv7em-none-eabihf >&2
target_dir=${CARGO_TARGET_DIR:-$here/target}
(cd "$here" && ARCA_STREAM="$stream" CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet) >&2
# -icount shift=0: one virtual nanosecond per instruction, so the firmware's SysTick (25 MHz)
# counts instructions (one tick per 40); semihosting carries stdout, stderr and the exit status.
exec timeout "${ARCA_QEMU_TIMEOUT:-3600}" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 \
  -display none -monitor none -serial none -icount shift=0 \
  -semihosting-config enable=on,target=native \
  -kernel "$target_dir/thumbv7em-none-eabihf/release/arca-firmware"
