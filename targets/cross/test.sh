#!/usr/bin/env bash
# Builds arca for an ARM Linux board and tests it under qemu-user:
#
#   targets/cross/test.sh aarch64     # aarch64-unknown-linux-gnu, qemu -cpu cortex-a53
#   targets/cross/test.sh armv7       # armv7-unknown-linux-gnueabihf, qemu -cpu cortex-a15 (NEON)
#
# 1. the unit tests of arca-coder, arca-bundle, arca-image, arca-generate (the portable
#    generation kernels: NEON on aarch64) and arca-runtime run on the target (among them:
#    text-small's logits on the target hash to the value tract computed on x86-64,
#    `text_small_logits_match_the_golden_hash`);
# 2. the C ABI (libarca.a) is built for the target and examples/c/roundtrip.c, cross-compiled
#    against it, runs under qemu and writes the host's stream byte for byte;
# 3. `arca` is built for the target and tests/tests/cross_arch.rs runs on the host against it:
#    every Canterbury and Calgary text file gives the same stream on both sides, each side
#    decodes the other's, and the golden streams decode on the target.
#
# By default the target build is native-only (`--no-default-features`: the native integer
# engine, no tract), which builds in a few minutes; it is what runs the default model on a board.
# ARCA_CROSS_TRACT=1 builds with tract (the default features: 15-20 minutes a target on 2 cores)
# and also runs the tract unit tests on the target (the native engine equals tract there).
#
# Needs: rustup target add <target>; apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
# qemu-user (.ci/run installs them). Cross artifacts go to target/cross so host builds are
# never blocked by them. ARCA_CROSS_FILES=N checks only the first N bytes of each file.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
case "${1:-}" in
    aarch64) target=aarch64-unknown-linux-gnu ;;
    armv7) target=armv7-unknown-linux-gnueabihf ;;
    *) echo "usage: $0 aarch64|armv7" >&2; exit 2 ;;
esac
config=targets/cross/config.toml
# The runner is defined once, in config.toml; the host-side test needs it as a command line.
runner=$(sed -n "/^\[target\.$target\]/,/^\[/s/^runner = \[\(.*\)\]/\1/p" "$config" | tr -d '",')
[[ -n "$runner" ]] || { echo "no runner for $target in $config" >&2; exit 1; }
export CARGO_TARGET_DIR="$root/target/cross"
export TRACT_CPU_ARM32_NEON=true
cargo_x() { cargo "$1" --config "$config" --target "$target" "${@:2}"; }

if [[ "${ARCA_CROSS_TRACT:-0}" == 1 ]]; then features=(); what="with tract"; else
    features=(--no-default-features); what="native-only"; fi

t0=$(date +%s)
echo "=== $target ($what): unit tests under $runner"
cargo_x test -p arca-coder -p arca-bundle -p arca-image -p arca-generate --lib
# The runtime's own `models` feature is on as the CLI and the C ABI turn it on: the golden-hash
# test runs the shipped text-small through this target's native kernels.
cargo_x test -p arca-runtime --lib "${features[@]}" --features models
echo "=== $target: build arca ($(( $(date +%s) - t0 ))s)"
cargo_x build -p arca-cli "${features[@]}"
bin="$CARGO_TARGET_DIR/$target/debug/arca"
file "$bin" 2>/dev/null || true
echo "=== $target: the C example against libarca.a ($(( $(date +%s) - t0 ))s)"
# The C ABI (runtime/capi) built for the board, examples/c/roundtrip.c cross-compiled against
# it with -Wall -Werror and run under qemu: its stream must be the host's byte for byte.
cargo_x build -p arca-capi "${features[@]}"
cc_target=$(sed -n "/^\[target\.$target\]/,/^\[/s/^linker = \"\(.*\)\"/\1/p" "$config")
cexe="$CARGO_TARGET_DIR/$target/debug/roundtrip-c"
"$cc_target" -Wall -Werror -std=c11 -I runtime/capi/include examples/c/roundtrip.c \
    "$CARGO_TARGET_DIR/$target/debug/libarca.a" -lpthread -ldl -lm -Wl,-z,noexecstack -o "$cexe"
ctmp=$(mktemp -d)
# shellcheck disable=SC2086 # the runner is a command line
$runner "$cexe" tests/data/canterbury/grammar.lsp "$ctmp/target.arca"
unset CARGO_TARGET_DIR
# The host's arca (CI's test step built it; built here otherwise).
[[ -x target/debug/arca ]] || cargo build -q -p arca-cli
target/debug/arca compress -c tests/data/canterbury/grammar.lsp > "$ctmp/host.arca"
cmp "$ctmp/target.arca" "$ctmp/host.arca"
echo "C example on $target: the same stream as the host's"
rm -rf "$ctmp"
export CARGO_TARGET_DIR="$root/target/cross"
echo "=== $target: streams across architectures ($(( $(date +%s) - t0 ))s)"
unset CARGO_TARGET_DIR
ARCA_CROSS_BIN="$bin" ARCA_CROSS_RUNNER="$runner" \
    cargo test -p arca-tests --test cross_arch -- --nocapture
echo "=== $target: done in $(( $(date +%s) - t0 ))s"
