#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 5: the CI smoke, about 30 s of
# fuzzing for the six targets), starting from the committed seed corpus. docs/reliability.md ("Fuzzing")
# says what each target checks and records the long runs.
#
#   scripts/fuzz.sh [SECONDS]          every target, SECONDS each
#   FUZZ_TARGETS="token jsonrpc_body" scripts/fuzz.sh 60
#   FUZZ_RUNS=10000000 scripts/fuzz.sh  a fixed number of executions per target instead of a time budget
#   FUZZ_SANITIZER=none                 no AddressSanitizer: 2-3x the executions per second, for long runs
#
# cargo-fuzz needs nightly flags (-Zsanitizer, sanitizer coverage); the toolchain is stable 1.95, so the build
# runs with RUSTC_BOOTSTRAP=1. AddressSanitizer is on by default: the product forbids unsafe code, but its
# dependencies (serde_json, bytes, prost, hyper, tokio) do not. Debug assertions and overflow checks are on
# (fuzz/Cargo.toml's release profile, which says why clap's own are off). Inputs a run finds go to a scratch corpus
# under fuzz/target/, never into the committed seeds; a crash is saved under fuzz/artifacts/<target>/ and
# fails the script, with the command that reproduces it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-5}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive whole number, got '$seconds'" >&2; exit 2; }
sanitizer="${FUZZ_SANITIZER:-address}"
case "$sanitizer" in
  address|none) ;;
  *) echo "fuzz: FUZZ_SANITIZER must be address or none, got '$sanitizer'" >&2; exit 2;;
esac
if [ -n "${FUZZ_RUNS:-}" ] && ! [[ "$FUZZ_RUNS" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: FUZZ_RUNS must be a positive whole number, got '$FUZZ_RUNS'" >&2; exit 2
fi
"$root/scripts/install-cargo-fuzz.sh"
export RUSTC_BOOTSTRAP=1
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
cd "$root/fuzz"
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
# Release with debug assertions and overflow checks; 16 codegen units build the workspace's crates about
# twice as fast as cargo-fuzz's default of 1, for a few percent of executions per second.
# The build goes to a target dir in the cache, outside the work tree, so a fresh clone reuses the
# sanitizer-instrumented dependencies (a cold build is ~20 CPU-minutes; only the workspace's crates rebuild).
# One target dir per sanitizer: switching would otherwise rebuild every dependency each time.
target_dir="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/fuzz-target-$sanitizer}"
mkdir -p "$target_dir"
# -O: without it cargo-fuzz puts -Cdebug-assertions in RUSTFLAGS, which overrides fuzz/Cargo.toml's profile
# (debug assertions and overflow checks on, except in clap_builder; that file says why).
build=(-O --sanitizer "$sanitizer" --codegen-units 16 --target-dir "$target_dir")
echo "fuzz: building $(echo $targets | wc -w) targets (a warm build is a no-op)" >&2
# cargo fuzz has no --locked: check the committed fuzz/Cargo.lock first, so CI builds what was reviewed.
cargo metadata --locked --format-version 1 >/dev/null \
  || { echo "fuzz: fuzz/Cargo.lock is out of date; run cargo update -w in fuzz/ and commit it" >&2; exit 1; }
# The build's output goes to a log: on failure, a linker's note is one line of many kilobytes (the whole
# command) that buries its reason, so print the lines that say what failed, and the free space (the ASan
# build of six binaries needs several GB).
mkdir -p target
if ! cargo fuzz build "${build[@]}" >target/build.log 2>&1; then
  grep -a -E '^(error|warning: build failed)|undefined reference|No space left|collect2|ld(\.[a-z]+)?: |killed|SIGKILL' \
    target/build.log | cut -c1-400 >&2 || true
  echo "fuzz: cargo fuzz build failed (full output: fuzz/target/build.log); free space where it builds:" >&2
  df -h "$target_dir" >&2 || true
  exit 1
fi
grep -a -E '^ *(Compiling|Finished)' target/build.log | tail -3 >&2 || true
failed=()
for t in $targets; do
  [ -d "corpus/$t" ] || { echo "fuzz: no seed corpus fuzz/corpus/$t (run fuzz/make-corpus.py)" >&2; exit 1; }
  work="target/corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  if [ -n "${FUZZ_RUNS:-}" ]; then budget=(-runs="$FUZZ_RUNS"); else budget=(-max_total_time="$seconds"); fi
  log="target/fuzz-$t.log"
  touch "$log.start"
  if [ -n "${FUZZ_RUNS:-}" ]; then what="$FUZZ_RUNS executions"; else what="${seconds}s"; fi
  echo "fuzz: $t ($what, sanitizer $sanitizer)" >&2
  # One worker: the machine's cores are shared. -timeout: an input that takes 10 s is a hang, reported.
  if cargo fuzz run "${build[@]}" "$t" "$work" "corpus/$t" -- "${budget[@]}" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
    awk -v t="$t" '/^stat::number_of_executed_units/ {n=$2} /^stat::average_exec_per_sec/ {s=$2}
      /cov: [0-9]+/ {for (i=1;i<=NF;i++) if ($i=="cov:") c=$(i+1)}
      END {printf "fuzz: %s ok: %s executions, %s exec/s, coverage %s edges\n", t, n, s, c}' "$log" >&2
  else
    failed+=("$t")
    tail -40 "$log" >&2
    # Only what this run found: older artifacts stay for whoever is fixing them.
    for a in $(find "artifacts/$t" -type f -newer "$log.start"); do
      echo "fuzz: $t failed; reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${build[*]} $t $a)" >&2
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
