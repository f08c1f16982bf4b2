#!/usr/bin/env bash
# Instructions per upstream event of every cross-dialect stream translation, counted
# with callgrind (independent of the machine's load).
#
#   scripts/callgrind-streams.sh [filter]     # e.g. `anthropic_from_converse`
#
# Builds the `streams` bench of aigw-providers (bench profile; BENCH=path skips the
# build), then for each case runs it under callgrind in its fixed-iteration mode
# (AIGW_BENCH_ITERS, see aigw-providers/benches/common/mod.rs), collecting only inside
# `feed_stream`, i.e. the translator's response_chunk calls without its set-up.
# Prints instructions per event; the callgrind files stay in $OUT for
# `callgrind_annotate`. The bench allocates with jemalloc, as the `aigw` binary does
# (the figures of docs/benchmarks.md before its seventh pass were counted with glibc).
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS=${ITERS:-20}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
filter=${1:-}
bin=${BENCH:-}
if [[ -z "$bin" ]]; then
  bin=$(cargo bench -p aigw-providers --bench streams --no-run --message-format=json \
    | jq -r 'select(.reason == "compiler-artifact" and .target.name == "streams") | .executable')
fi
names=$(AIGW_BENCH_ITERS=0 AIGW_BENCH_FILTER="$filter" "$bin" | cut -f1)
printf '%-34s %8s %12s\n' case events Ir/event
for name in $names; do
  file="$OUT/$name.callgrind"
  events=$(AIGW_BENCH_ITERS=$ITERS AIGW_BENCH_FILTER="$name" \
    valgrind --tool=callgrind --callgrind-out-file="$file" --toggle-collect='*feed_stream*' \
    "$bin" 2>/dev/null | awk -F'\t' -v n="$name" '$1 == n { split($2, e, " "); print e[1] }')
  ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$file")
  printf '%-34s %8s %12.0f\n' "$name" "$events" "$(echo "$ir / ($ITERS * $events)" | bc -l)"
done
echo "callgrind files: $OUT" >&2
