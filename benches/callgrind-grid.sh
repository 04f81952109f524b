#!/usr/bin/env bash
# Instructions per request (callgrind), ours over tower-http 0.7, for every
# cell of the tower grid: body 0 B / 16 KiB / 1 MiB, 0 / 1 / 5 hops, 1 / 16
# tasks. Each figure is the slope between two runs of N and 3N requests, so
# that start-up (runtime, server, first connection) cancels out and a step
# (a table that grows once) is spread over 2N requests. Client and
# server are counted together, user space only (the kernel's copies of the
# body are not instructions callgrind sees). In this mode the server runs on
# the client's current-thread runtime, so that the two take turns in the
# same order in every run: a count is then the same from run to run (to
# ~0.01 %), 16 tasks included. The 1 MiB cells still move by up to ±3 %
# (how many partial writes a send takes follows the kernel's socket buffer
# tuning), so each of their figures is the median of three slopes.
#
#   bash benches/callgrind-grid.sh            # needs valgrind; ~8 min on this machine
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo bench --bench tower --features tower --no-run 2>&1 |
  grep -o 'target/release/deps/tower-[0-9a-f]*' | head -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
total() { callgrind_annotate "$1" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'; }
count() { # side hops n size tasks -> instructions
  local f="$out/$1.$2.$3.$4.$5"
  valgrind --tool=callgrind --callgrind-out-file="$f" "$bin" --profile "$1" "$2" "$3" "$4" "$5" \
    >/dev/null 2>&1
  total "$f"
}
slope() { # side hops size tasks n
  local a b
  a=$(count "$1" "$2" "$5" "$3" "$4") b=$(count "$1" "$2" $(($5 * 3)) "$3" "$4")
  echo $(((b - a) / ($5 * 2)))
}
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
cell() { # side hops size tasks n
  if [ "$3" -ge 1048576 ]; then
    median3 "$(slope "$@")" "$(slope "$@")" "$(slope "$@")"
  else
    slope "$@"
  fi
}
echo "| body | hops | tasks | tower-http instructions/req | ours | ours ÷ tower-http |"
echo "|---:|---:|---:|---:|---:|---:|"
for size in 0 16384 1048576; do
  case $size in 0) label="0 B" n=640 ;; 16384) label="16 KiB" n=640 ;; *) label="1 MiB" n=160 ;; esac
  for hops in 0 1 5; do
    for tasks in 1 16; do
      theirs=$(cell tower-http $hops $size $tasks $n) &&
        ours=$(cell ours $hops $size $tasks $n)
      awk -v l="$label" -v h=$hops -v t=$tasks -v a="$theirs" -v b="$ours" \
        'BEGIN { printf "| %s | %d | %d | %.1f k | %.1f k | %.3f |\n", l, h, t, a / 1e3, b / 1e3, b / a }'
    done
  done
done
