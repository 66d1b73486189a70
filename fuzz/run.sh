#!/usr/bin/env bash
# Short fuzz runs of every target (default 60 s each). Needs `cargo install cargo-fuzz`.
# The stable toolchain works with RUSTC_BOOTSTRAP=1 and no sanitizer (-s none).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
for t in data_csv pipeline_spec model_artifact request_body; do
  [ -f "fuzz_targets/$t.rs" ] || continue
  echo "== $t (${secs}s)"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+== ERROR|SUMMARY)|panicked" || true
done
