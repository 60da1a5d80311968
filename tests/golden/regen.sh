#!/usr/bin/env bash
# Regenerates the golden .arca streams in this folder with the model embedded in `arca`
# (models/text-small.arcm at build time). Run it whenever that model is re-exported:
# runtime/cli/tests/golden.rs fails with "golden streams are stale" until you do.
#
#   tests/golden/regen.sh            # builds `cargo build --release -p arca-cli` first
#   ARCA=path/to/arca tests/golden/regen.sh   # uses that binary instead
#
# grammar.lsp and xargs.1 are one block each; fields.c is cut into 2 KiB blocks (-B 2K) so
# that the golden set also covers a multi-block stream.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
if [[ -z "${ARCA:-}" ]]; then
    cargo build --release -p arca-cli
    ARCA="${CARGO_TARGET_DIR:-$root/target}/release/arca"
fi
src=tests/data/canterbury
out=tests/golden
# Native CPU tier: the streams must not depend on it (golden.rs decodes them on every tier).
unset TRACT_CPU_ISA
"$ARCA" compress -q -f -o "$out/grammar.lsp.arca" "$src/grammar.lsp"
"$ARCA" compress -q -f -B 2K -o "$out/fields.c.arca" "$src/fields.c"
"$ARCA" compress -q -f -o "$out/xargs.1.arca" "$src/xargs.1"
for f in grammar.lsp fields.c xargs.1; do
    "$ARCA" decompress -q -c "$out/$f.arca" | cmp - "$src/$f"
done
"$ARCA" list "$out"/*.arca
