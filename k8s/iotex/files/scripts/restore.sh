#!/bin/sh
# Restores the latest backup into DATA_DIR before a delegate starts (its init container).
#   DATA_DIR/.restore-complete exists   -> data is already there: skip.
#   anything else in DATA_DIR           -> a half-finished restore: removed first.
#   each attempt (RESTORE_ATTEMPTS, RESTORE_RETRY_DELAY seconds apart) reads $S3_REMOTE/latest
#   ("<name> <sha256> <bytes>"), streams the snapshot into DATA_DIR/.restore-tmp while hashing it, and
#   only moves it into place when tar, sha256 and size all agree; a failed attempt is cleaned up.
#   No backup yet -> start empty (the node syncs from its peers), unless RESTORE_REQUIRE_BACKUP=1.
set -u
log() { printf '%s restore: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
data="${DATA_DIR:?DATA_DIR is not set}"
remote="${S3_REMOTE:?S3_REMOTE is not set}"
attempts="${RESTORE_ATTEMPTS:-5}"
delay="${RESTORE_RETRY_DELAY:-10}"
require="${RESTORE_REQUIRE_BACKUP:-0}"
marker="$data/.restore-complete"
tmp="$data/.restore-tmp"

mkdir -p "$data"
if [ -f "$marker" ]; then
  log "data already present ($(cat "$marker")): skipping"
  exit 0
fi
if [ -n "$(ls -A "$data")" ]; then
  log "removing a half-finished restore from $data"
  find "$data" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
fi

mark() { printf '%s\n' "$1" >"$marker.new" && mv "$marker.new" "$marker"; }

attempt() {
  rm -rf "$tmp" && mkdir -p "$tmp"
  if ! listing="$(rclone lsf --files-only "$remote/" 2>"$tmp.err")"; then
    # A prefix that was never written is "directory not found" (exit 3): no backup yet.
    if grep -qi "directory not found" "$tmp.err"; then listing=""; else
      log "cannot list $remote: $(cat "$tmp.err")"; return 1; fi
  fi
  if ! printf '%s\n' "$listing" | grep -qx latest; then
    echo none >"$tmp.state"; return 2
  fi
  pointer="$(rclone cat "$remote/latest")" || { log "cannot read $remote/latest"; return 1; }
  set -- $pointer
  name="${1:-}"; want_sha="${2:-}"; want_bytes="${3:-}"
  [ -n "$want_bytes" ] || { log "malformed pointer: '$pointer'"; return 1; }
  log "restoring $name ($want_bytes bytes)"
  rm -f "$tmp.sha.pipe" "$tmp.len.pipe"
  mkfifo "$tmp.sha.pipe" "$tmp.len.pipe"
  sha256sum <"$tmp.sha.pipe" >"$tmp.sha" &
  wc -c <"$tmp.len.pipe" >"$tmp.len" &
  { rclone cat "$remote/snapshots/$name"; echo $? >"$tmp.rclone.rc"; } \
    | tee "$tmp.sha.pipe" "$tmp.len.pipe" \
    | { tar -xzf - -C "$tmp"; echo $? >"$tmp.tar.rc"; }
  wait
  got_sha="$(cut -d' ' -f1 <"$tmp.sha")"
  got_bytes="$(tr -d ' ' <"$tmp.len")"
  if [ "$(cat "$tmp.rclone.rc")" != 0 ] || [ "$(cat "$tmp.tar.rc")" != 0 ] \
     || [ "$got_sha" != "$want_sha" ] || [ "$got_bytes" != "$want_bytes" ]; then
    log "attempt failed: rclone $(cat "$tmp.rclone.rc"), tar $(cat "$tmp.tar.rc"), sha256 $got_sha vs $want_sha, bytes $got_bytes vs $want_bytes"
    return 1
  fi
  find "$tmp" -mindepth 1 -maxdepth 1 -exec mv {} "$data/" \;
  mark "$name sha256=$want_sha"
  return 0
}

cleanup() { rm -rf "$tmp" "$tmp".*; }
i=1
while [ "$i" -le "$attempts" ]; do
  attempt
  rc=$?
  cleanup
  if [ "$rc" = 0 ]; then
    log "restored into $data"
    exit 0
  fi
  if [ "$rc" = 2 ]; then
    if [ "$require" = 1 ]; then
      log "no backup at $remote yet (attempt $i/$attempts) and one is required"
    else
      log "no backup at $remote yet: starting with empty data (the node syncs from its peers)"
      mark "empty: no backup existed"
      exit 0
    fi
  fi
  if [ "$i" -lt "$attempts" ]; then sleep "$delay"; fi
  i=$((i + 1))
done
log "giving up after $attempts attempts; $data left empty"
find "$data" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
exit 1
