#!/bin/sh
# The S3 side and the ordering of a sharded load run (injector.shards > 1). Objects go to the backup bucket,
# with the backup's credentials, under $S3_REMOTE/loadtests/$RUN_ID/:
#   shards/<index>/report.json, shards/<index>/histogram.hlog   one per shard of the Indexed Job
#   merged/report.json, merged/histogram.hlog, merged/latency.svg   written once by the merge Job
# Modes (one per container that runs this script):
#   upload-shard   after this shard's injector exited: its RESULTS_DIR to shards/$SHARD_INDEX/ (report required)
#   wait           until the shard Job $SHARD_JOB is Complete (exit 0) or Failed (exit 1); polls with `get`
#                  only, so its Role can name that one Job; WAIT_TIMEOUT > 0 bounds it (the merge Job's
#                  activeDeadlineSeconds bounds it in the chart)
#   download       every shard's files into RESULTS_DIR/shards/<index>/; fails naming the shards missing
#   upload-merged  RESULTS_DIR/merged/* to merged/
# Every upload is checked by size after it lands, as backup.sh does.
set -u
log() { printf '%s loadtest-results: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

run_remote() {
  remote="${S3_REMOTE:?S3_REMOTE is not set}"
  run_id="${RUN_ID:?RUN_ID is not set}"
  # A run id becomes part of an object key: refuse anything that could climb out of loadtests/.
  case "$run_id" in
    */* | .* | *..* | '') log "run id '$run_id' is not a plain name"; return 1 ;;
  esac
  echo "$remote/loadtests/$run_id"
}

shards_count() {
  case "${SHARDS:-}" in
    '' | *[!0-9]* | 0) log "SHARDS '${SHARDS:-}' is not a positive number"; return 1 ;;
  esac
  echo "$SHARDS"
}

# put FILE OBJECT: upload, then compare the stored size with the local one.
put() {
  if ! rclone copyto "$1" "$2"; then
    log "could not upload $1 to $2"
    return 1
  fi
  want="$(wc -c <"$1" | tr -d ' ')"
  got="$(rclone lsf --format s "$2" 2>/dev/null)"
  if [ "$got" != "$want" ]; then
    log "uploaded size of $2 is ${got:-none}, not $want bytes"
    return 1
  fi
  log "uploaded $2 ($want bytes)"
}

upload_shard() {
  base="$(run_remote)" || return 1
  dir="${RESULTS_DIR:?RESULTS_DIR is not set}"
  case "${SHARD_INDEX:-}" in
    '' | *[!0-9]*) log "SHARD_INDEX '${SHARD_INDEX:-}' is not a completion index"; return 1 ;;
  esac
  if [ ! -s "$dir/report.json" ]; then
    # the injector exited before writing a report (bad input, endpoint down): nothing to merge
    log "no report in $dir: shard $SHARD_INDEX has nothing to upload"
    return 1
  fi
  put "$dir/report.json" "$base/shards/$SHARD_INDEX/report.json" || return 1
  if [ -s "$dir/histogram.hlog" ]; then
    put "$dir/histogram.hlog" "$base/shards/$SHARD_INDEX/histogram.hlog" || return 1
  fi
}

wait_shards() {
  job="${SHARD_JOB:?SHARD_JOB is not set}"
  n="$(shards_count)" || return 1
  poll="${POLL_SECONDS:-15}"
  timeout="${WAIT_TIMEOUT:-0}"
  waited=0
  while :; do
    if state="$(kubectl get job "$job" -o 'jsonpath={.status.succeeded} {.status.conditions[?(@.status=="True")].type}' 2>"${TMPDIR:-/tmp}/wait.err")"; then
      done_count="${state%% *}"
      case " $state " in
        *" Complete "*) log "all $n shards of $job are done"; return 0 ;;
        *" Failed "*) log "shard Job $job failed (${done_count:-0} of $n shards done): no merge"; return 1 ;;
      esac
      log "${done_count:-0} of $n shards of $job done; waiting"
    else
      log "cannot read Job $job: $(cat "${TMPDIR:-/tmp}/wait.err")"
    fi
    if [ "$timeout" -gt 0 ] && [ "$waited" -ge "$timeout" ]; then
      log "gave up after ${waited}s (WAIT_TIMEOUT)"
      return 1
    fi
    sleep "$poll"
    waited=$((waited + poll))
  done
}

download() {
  base="$(run_remote)" || return 1
  dir="${RESULTS_DIR:?RESULTS_DIR is not set}"
  n="$(shards_count)" || return 1
  missing=""
  i=0
  while [ "$i" -lt "$n" ]; do
    mkdir -p "$dir/shards/$i"
    if ! rclone copy "$base/shards/$i/" "$dir/shards/$i/" || [ ! -s "$dir/shards/$i/report.json" ]; then
      missing="$missing $i"
    fi
    i=$((i + 1))
  done
  if [ -n "$missing" ]; then
    log "no report from shard(s)$missing of $n under $base/shards/: refusing a partial merge"
    return 1
  fi
  log "downloaded the reports of all $n shards"
}

upload_merged() {
  base="$(run_remote)" || return 1
  dir="${RESULTS_DIR:?RESULTS_DIR is not set}/merged"
  [ -s "$dir/report.json" ] || { log "no merged report in $dir"; return 1; }
  for f in "$dir"/*; do
    [ -f "$f" ] || continue
    put "$f" "$base/merged/$(basename "$f")" || return 1
  done
  log "merged results of run $RUN_ID are under $base/merged/"
}

case "${1:-}" in
  upload-shard) upload_shard ;;
  wait) wait_shards ;;
  download) download ;;
  upload-merged) upload_merged ;;
  *) log "usage: loadtest-results.sh upload-shard|wait|download|upload-merged"; exit 2 ;;
esac
