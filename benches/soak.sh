#!/usr/bin/env bash
# 30 minutes of mixed traffic against `percept serve` (benches/soak.py; --minutes N to change).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p percept
exec python3 benches/soak.py "$@"
