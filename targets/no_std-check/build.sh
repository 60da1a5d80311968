#!/usr/bin/env bash
# Builds arca-coder with default features off for a Cortex-M4F (thumbv7em-none-eabihf).
# Fails if arca-coder (or a dependency) pulls in std or alloc.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add thumbv7em-none-eabihf
cargo build --release --target thumbv7em-none-eabihf
echo "no_std check: ok (target/thumbv7em-none-eabihf/release/arca-no-std-check)"
