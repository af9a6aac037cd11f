#!/usr/bin/env python3
"""Runs the chart's backup and restore scripts (k8s/iotex/files/scripts) for real against a local S3
server (moto, 127.0.0.1) with rclone, under busybox sh and busybox's tar/sha256sum/tee like the rclone
image they run in. Also drives bootnode-scale.sh's stop/start edge cases against a fake kubectl. One named check per behaviour;
prints `N passed, N failed` and exits non-zero on any failure.
"""
import filecmp
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import logging
import time
import traceback
from pathlib import Path

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

SCRIPTS = Path(__file__).resolve().parent.parent / "iotex" / "files" / "scripts"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "loadtest"
BUSYBOX_APPLETS = ["sh", "tar", "gzip", "sha256sum", "tee", "wc", "head", "sort", "cut", "tr", "find",
                   "mkfifo", "mktemp", "date", "grep", "cat", "rm", "mkdir", "mv", "ls", "sleep", "printf",
                   "echo", "touch", "gunzip", "sed", "basename"]
results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f"  ({detail})" if detail and not ok else ""))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    def __init__(self, root: Path, port: int):
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        busybox = shutil.which("busybox")
        for applet in BUSYBOX_APPLETS:
            os.symlink(busybox, self.bin / applet)
        os.symlink(shutil.which("rclone"), self.bin / "rclone")
        self.base = {
            "PATH": str(self.bin),
            "HOME": str(root),
            "TMPDIR": str(root / "tmp"),
            "RCLONE_CONFIG": str(root / "rclone.conf"),
            "RCLONE_CONFIG_S3_TYPE": "s3",
            "RCLONE_CONFIG_S3_PROVIDER": "Other",
            "RCLONE_CONFIG_S3_ENV_AUTH": "false",
            "RCLONE_CONFIG_S3_ENDPOINT": f"http://127.0.0.1:{port}",
            "RCLONE_CONFIG_S3_REGION": "us-east-1",
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "test",
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "test",
            "RCLONE_LOW_LEVEL_RETRIES": "2",
            "RCLONE_RETRIES": "1",
        }
        (root / "tmp").mkdir()
        (root / "rclone.conf").write_text("")

    def run(self, script, *args, timeout=120, **env):
        e = dict(self.base)
        e.update({k: str(v) for k, v in env.items()})
        started = time.monotonic()
        p = subprocess.run([str(self.bin / "sh"), str(SCRIPTS / script), *args], env=e, capture_output=True,
                           text=True, timeout=timeout)
        p.elapsed = time.monotonic() - started
        return p

    def rclone(self, *args):
        return subprocess.run([str(self.bin / "rclone"), *args], env=self.base, capture_output=True, text=True,
                              timeout=60)


def make_data(d: Path):
    (d / "chain.db").parent.mkdir(parents=True, exist_ok=True)
    (d / "chain.db").write_bytes(os.urandom(300_000))
    (d / "trie.db").mkdir()
    (d / "trie.db" / "000001.sst").write_bytes(os.urandom(50_000))
    (d / "trie.db" / "MANIFEST").write_text("manifest\n")
    (d / ".hidden-state").write_text("hidden\n")


def same_tree(a: Path, b: Path):
    cmp = filecmp.dircmp(a, b, ignore=[".restore-complete"])
    def walk(c):
        if c.left_only or c.right_only or c.diff_files or c.funny_files:
            return False
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        return not mismatch and not errors and all(walk(s) for s in c.subdirs.values())
    return walk(cmp)


def main():
    os.environ.pop("AWS_CA_BUNDLE", None)  # rclone against plain http must not load the machine's CA bundle
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server.start()
    root = Path(tempfile.mkdtemp(prefix="iotex-backup-test-"))
    try:
        env = Env(root, port)
        mk = env.rclone("mkdir", "s3:backups")
        check("s3 bucket created on the local moto server", mk.returncode == 0, mk.stderr)
        # rclone HEADs a multipart upload with ?versionId=<the returned id>; moto answers "null" for an
        # unversioned bucket and then refuses its own "null" (real S3 does not), so version the bucket.
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test").put_bucket_versioning(
            Bucket="backups", VersioningConfiguration={"Status": "Enabled"})
        remote = "s3:backups/iotex/testrel"
        data = root / "bootnode-data"
        data.mkdir()
        make_data(data)

        # --- backup
        b = env.run("backup.sh", DATA_DIR=data, S3_REMOTE=remote, BACKUP_KEEP=2)
        check("backup.sh exits 0 on a good data dir", b.returncode == 0, b.stderr)
        snaps = env.rclone("lsf", f"{remote}/snapshots/").stdout.split()
        check("backup uploads one snapshot object", len(snaps) == 1, snaps)
        pointer = env.rclone("cat", f"{remote}/latest").stdout.split()
        check("latest pointer names the uploaded snapshot", len(pointer) == 3 and [pointer[0]] == snaps, pointer)
        blob = subprocess.run([str(env.bin / "rclone"), "cat", f"{remote}/snapshots/{snaps[0]}"], env=env.base,
                              capture_output=True, timeout=60).stdout
        check("latest pointer carries the snapshot's sha256 and size",
              pointer[1:] == [hashlib.sha256(blob).hexdigest(), str(len(blob))], (pointer, len(blob)))

        # --- restore into an empty delegate data dir
        d1 = root / "delegate-1"
        d1.mkdir()
        r = env.run("restore.sh", DATA_DIR=d1, S3_REMOTE=remote, RESTORE_ATTEMPTS=3, RESTORE_RETRY_DELAY=0)
        check("restore.sh exits 0 with a backup present", r.returncode == 0, r.stderr)
        check("restore reproduces the boot node's files byte for byte", same_tree(data, d1))
        check("restore writes the completion marker", (d1 / ".restore-complete").is_file())
        check("restore leaves no temporary files", not any(p.name.startswith(".restore-tmp") for p in d1.iterdir()))

        # --- skip when present: must not touch the data, nor even need S3
        (d1 / "chain.db").write_bytes(b"synced-since-restore")
        r = env.run("restore.sh", DATA_DIR=d1, S3_REMOTE="s3:no-such-bucket/x", RESTORE_ATTEMPTS=1,
                    RESTORE_RETRY_DELAY=0, RCLONE_CONFIG_S3_ENDPOINT="http://127.0.0.1:9")
        check("restore skips when data is already there (exit 0, S3 unreachable)", r.returncode == 0, r.stderr)
        check("restore skip leaves existing data untouched", (d1 / "chain.db").read_bytes() == b"synced-since-restore")

        # --- cleanup after a half-finished restore (no marker, junk and a partial temp dir)
        d2 = root / "delegate-2"
        (d2 / ".restore-tmp" / "trie.db").mkdir(parents=True)
        (d2 / ".restore-tmp" / "trie.db" / "partial").write_bytes(b"x" * 100)
        (d2 / "chain.db").write_bytes(b"half-written")
        r = env.run("restore.sh", DATA_DIR=d2, S3_REMOTE=remote, RESTORE_ATTEMPTS=3, RESTORE_RETRY_DELAY=0)
        check("restore after a half-finished one exits 0", r.returncode == 0, r.stderr)
        check("half-finished restore is cleaned up and replaced by the backup", same_tree(data, d2))
        check("half-finished restore is reported in the log", "half-finished" in r.stderr, r.stderr)

        # --- a corrupt snapshot: bounded retries, nothing left behind
        good_pointer = env.rclone("cat", f"{remote}/latest").stdout
        name, sha, size = good_pointer.split()
        bad = subprocess.run([str(env.bin / "rclone"), "rcat", f"{remote}/latest"], env=env.base, text=True,
                             input=f"{name} {'0' * 64} {size}\n", capture_output=True, timeout=60)
        d3 = root / "delegate-3"
        d3.mkdir()
        r = env.run("restore.sh", DATA_DIR=d3, S3_REMOTE=remote, RESTORE_ATTEMPTS=3, RESTORE_RETRY_DELAY=0)
        tries = r.stderr.count("attempt failed")
        check("failed restore (checksum mismatch) exits non-zero", bad.returncode == 0 and r.returncode != 0, r.stderr)
        check("failed restore retries exactly RESTORE_ATTEMPTS times", tries == 3, f"{tries} attempts")
        check("failed restore leaves the data dir empty (no marker, no partial files)", list(d3.iterdir()) == [],
              list(d3.iterdir()))
        r = env.run("restore.sh", DATA_DIR=d3, S3_REMOTE=f"{remote}-missing-object", RESTORE_ATTEMPTS=2,
                    RESTORE_RETRY_DELAY=1, RESTORE_REQUIRE_BACKUP=1)
        check("missing backup with requireBackup fails after bounded retries", r.returncode != 0 and r.elapsed < 30,
              f"rc={r.returncode} {r.elapsed:.1f}s")
        subprocess.run([str(env.bin / "rclone"), "rcat", f"{remote}/latest"], env=env.base, text=True,
                       input=good_pointer, capture_output=True, timeout=60, check=True)

        # --- no backup yet: start empty
        d4 = root / "delegate-4"
        d4.mkdir()
        r = env.run("restore.sh", DATA_DIR=d4, S3_REMOTE="s3:backups/iotex/fresh-cluster", RESTORE_ATTEMPTS=2,
                    RESTORE_RETRY_DELAY=0)
        check("no backup yet: restore exits 0 and starts empty",
              r.returncode == 0 and [p.name for p in d4.iterdir()] == [".restore-complete"], r.stderr)

        # --- failed backups leave the pointer where it was
        before = env.rclone("cat", f"{remote}/latest").stdout
        empty = root / "empty"
        empty.mkdir()
        status = root / "status"
        b = env.run("backup.sh", DATA_DIR=empty, S3_REMOTE=remote, STATUS_FILE=status)
        check("backup of an empty data dir reports failure via STATUS_FILE and exits 0",
              b.returncode == 0 and status.read_text().strip() == "1", (b.returncode, b.stderr))
        b = env.run("backup.sh", DATA_DIR=data, S3_REMOTE="s3:no-such-bucket/iotex/testrel")
        check("backup to an unreachable bucket fails", b.returncode != 0, b.stderr)
        check("failed backups leave the latest pointer unchanged",
              env.rclone("cat", f"{remote}/latest").stdout == before)

        # --- newer backups move the pointer; retention keeps BACKUP_KEEP snapshots
        for _ in range(2):
            time.sleep(1.1)  # snapshot names have one-second resolution
            (data / "chain.db").write_bytes(os.urandom(1000))
            b = env.run("backup.sh", DATA_DIR=data, S3_REMOTE=remote, BACKUP_KEEP=2, STATUS_FILE=status)
        snaps = sorted(env.rclone("lsf", f"{remote}/snapshots/").stdout.split())
        newest = env.rclone("cat", f"{remote}/latest").stdout.split()[0]
        check("a later backup succeeds (STATUS_FILE 0)", status.read_text().strip() == "0", b.stderr)
        check("retention keeps exactly BACKUP_KEEP snapshots", len(snaps) == 2, snaps)
        check("latest points at the newest snapshot", newest == snaps[-1], (newest, snaps))
        d5 = root / "delegate-5"
        d5.mkdir()
        r = env.run("restore.sh", DATA_DIR=d5, S3_REMOTE=remote, RESTORE_ATTEMPTS=2, RESTORE_RETRY_DELAY=0)
        check("restore picks up the newest backup", r.returncode == 0 and same_tree(data, d5), r.stderr)

        # --- bootnode-scale.sh's stop/start edge cases against a fake kubectl: `get pod` shows the pod
        # FAKE_POD_POLLS times, then not; the Lease is held by this pod. (The Lease, RBAC, refusal and the
        # guard run against a real API server in cluster_tests.py.)
        calls = root / "kubectl.calls"
        polls = root / "polls"
        fake = env.bin / "kubectl"
        fake.write_text('#!/bin/sh\necho "$*" >>"$KUBECTL_LOG"\n'
                        'if [ "$1 $2" = "get lease" ]; then echo "7|backup-x|false"; exit 0; fi\n'
                        'if [ "$1" = get ]; then\n'
                        '  [ "${FAKE_GET_RC:-0}" = 0 ] || exit "$FAKE_GET_RC"\n'
                        '  n=$(cat "$POLLS"); if [ "$n" -gt 0 ]; then echo "pod/$3"; echo $((n - 1)) >"$POLLS"; fi\n'
                        'fi\nexit 0\n')
        fake.chmod(0o755)
        scale_env = dict(BOOTNODE_STS="rel-bootnode", LEASE="rel-backup", POD_NAME="backup-x", KUBECTL_LOG=calls,
                         POLLS=polls, POLL_SECONDS=0)
        get = "get pod rel-bootnode-0 --ignore-not-found -o name"
        scales = lambda log: [l for l in log if l.startswith("scale ")]
        polls.write_text("2")
        r = env.run("bootnode-scale.sh", "stop", **scale_env)
        log = calls.read_text().splitlines()
        marked = [l for l in log if l.startswith("patch lease rel-backup") and '"iotex.io/bootnode-stopped":"true"' in l]
        check("stop marks the Lease, scales the boot node to 0 and polls until its pod is gone",
              r.returncode == 0 and marked and log.index(marked[0]) < log.index("scale statefulset rel-bootnode --replicas=0")
              and log.count(get) == 3 and scales(log) == ["scale statefulset rel-bootnode --replicas=0"], log)
        calls.unlink()
        polls.write_text("1000")
        r = env.run("bootnode-scale.sh", "stop", **{**scale_env, "STOP_TIMEOUT": 1, "POLL_SECONDS": 1})
        log = calls.read_text().splitlines()
        check("stop that times out restarts the boot node, releases the Lease and fails (bounded)",
              r.returncode == 1 and scales(log)[-1] == "scale statefulset rel-bootnode --replicas=1"
              and '"holderIdentity":null' in log[-1] and r.elapsed < 10, log)
        calls.unlink()
        polls.write_text("0")
        r = env.run("bootnode-scale.sh", "stop", **scale_env, FAKE_GET_RC=1)
        log = calls.read_text().splitlines()
        check("stop that cannot read the pod restarts the boot node and fails (never backs up a live node)",
              r.returncode == 1 and scales(log)[-1] == "scale statefulset rel-bootnode --replicas=1", log)
        calls.unlink()
        r = env.run("bootnode-scale.sh", "stop", **{**scale_env, "POD_NAME": "backup-y"})
        log = calls.read_text().splitlines()
        check("stop by a pod that does not hold the Lease touches nothing", r.returncode == 1 and not scales(log), log)
        calls.unlink()
        status.write_text("1\n")
        r = env.run("bootnode-scale.sh", "start", **scale_env, STATUS_FILE=status)
        log = calls.read_text().splitlines()
        check("start restarts the boot node even after a failed backup, releases the Lease, then fails the job",
              r.returncode == 1 and scales(log) == ["scale statefulset rel-bootnode --replicas=1"]
              and '"holderIdentity":null' in log[-1], (r.returncode, log))
        status.write_text("0\n")
        r = env.run("bootnode-scale.sh", "start", **scale_env, STATUS_FILE=status)
        check("start after a good backup exits 0", r.returncode == 0, r.stderr)

        loadtest_results(env, root)
    except Exception:  # a crash in the middle is a failure, not a silent stop
        check("test run completed without an exception", False, traceback.format_exc())
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    failed = sum(1 for _, ok in results if not ok)
    print(f"backup/restore: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def loadtest_results(env: Env, root: Path):
    """loadtest-results.sh, the S3 side of a sharded load run (injector.shards), against the same moto
    bucket: two real shards (fixtures/loadtest, recorded with the real injector) upload under the run id,
    the merge Job's download gets both (and refuses a partial set), the real `iotex-injector merge` merges
    them as the chart's merge container does, and upload-merged puts the result next to them; `wait`
    against a fake kubectl. The merge needs a built injector (IOTEX_INJECTOR_BIN, set by validate.sh);
    without one those checks are skipped, loudly."""
    remote = "s3:backups/iotex/testrel"
    run_id = "fixture-run-1"
    base = f"{remote}/loadtests/{run_id}"
    shards = {}
    for i in range(2):
        d = FIXTURES / f"shard-{i}"
        shards[i] = {n: (d / n).read_bytes() for n in ("report.json", "histogram.hlog")}
        u = env.run("loadtest-results.sh", "upload-shard", S3_REMOTE=remote, RUN_ID=run_id, SHARD_INDEX=i,
                    RESULTS_DIR=d)
        check(f"shard {i} uploads its report and histogram log under the run id", u.returncode == 0, u.stderr)
    listed = sorted(env.rclone("lsf", "-R", "--files-only", f"{base}/").stdout.split())
    check("the run's folder holds shards/<index>/report.json and histogram.hlog for the 2 shards",
          listed == sorted(f"shards/{i}/{n}" for i in range(2) for n in ("histogram.hlog", "report.json")), listed)

    work = root / "merge"
    dl = env.run("loadtest-results.sh", "download", S3_REMOTE=remote, RUN_ID=run_id, SHARDS=2, RESULTS_DIR=work)
    check("the merge Job's download gets every shard's files byte for byte",
          dl.returncode == 0 and all((work / "shards" / str(i) / n).read_bytes() == b
                                     for i in range(2) for n, b in shards[i].items()), dl.stderr)
    short = env.run("loadtest-results.sh", "download", S3_REMOTE=remote, RUN_ID=run_id, SHARDS=4,
                    RESULTS_DIR=root / "merge-4")
    check("download refuses a partial set, naming the missing shards (no merge of wrong totals)",
          short.returncode != 0 and "shard(s) 2 3 of 4" in short.stderr, short.stderr)
    injector = os.environ.get("IOTEX_INJECTOR_BIN", "")
    if not injector or not os.access(injector, os.X_OK):
        print("SKIP iotex-injector merge of the downloaded shards and upload-merged: no built injector "
              "(IOTEX_INJECTOR_BIN); scripts/test.sh builds one")
    else:
        merged_report = real_merge(injector, work)
        merged = {n: (work / "merged" / n).read_bytes() for n in ("report.json", "histogram.hlog", "latency.svg")}
        um = env.run("loadtest-results.sh", "upload-merged", S3_REMOTE=remote, RUN_ID=run_id, RESULTS_DIR=work)
        got = {n: subprocess.run([str(env.bin / "rclone"), "cat", f"{base}/merged/{n}"], env=env.base,
                                 capture_output=True, timeout=60).stdout for n in merged}
        check("upload-merged puts the merged report, histogram log and plot under merged/",
              um.returncode == 0 and got == merged and merged_report is not None, um.stderr)

    # hostile or broken input: nothing is written outside loadtests/<run id>/, and every refusal says why
    empty = root / "empty-shard"
    empty.mkdir()
    for what, args, kw, needle in [
        ("a run id with a slash", ["upload-shard"], dict(RUN_ID="../../latest", SHARD_INDEX=0, RESULTS_DIR=FIXTURES / "shard-0"), "not a plain name"),
        ("a run id starting with a dot", ["upload-shard"], dict(RUN_ID="..", SHARD_INDEX=0, RESULTS_DIR=FIXTURES / "shard-0"), "not a plain name"),
        ("a shard index that is not a number", ["upload-shard"], dict(RUN_ID=run_id, SHARD_INDEX="1;rm", RESULTS_DIR=FIXTURES / "shard-0"), "not a completion index"),
        ("a shard without a report (its injector failed early)", ["upload-shard"], dict(RUN_ID=run_id, SHARD_INDEX=9, RESULTS_DIR=empty), "no report"),
        ("a shard count that is not a number", ["download"], dict(RUN_ID=run_id, SHARDS="4x", RESULTS_DIR=root / "m2"), "not a positive number"),
        ("zero shards", ["download"], dict(RUN_ID=run_id, SHARDS="0", RESULTS_DIR=root / "m3"), "not a positive number"),
        ("a merge with no merged report", ["upload-merged"], dict(RUN_ID=run_id, RESULTS_DIR=empty), "no merged report"),
        ("an unknown mode", ["merge-everything"], dict(RUN_ID=run_id), "usage"),
    ]:
        p = env.run("loadtest-results.sh", *args, S3_REMOTE=remote, **kw)
        check(f"loadtest-results.sh refuses {what}", p.returncode != 0 and needle in p.stderr, p.stderr)
    after = sorted(env.rclone("lsf", "-R", "--files-only", f"{remote}/").stdout.split())
    check("refused uploads wrote nothing (only snapshots, latest and this run's folder exist)",
          all(x.startswith(("snapshots/", "latest", f"loadtests/{run_id}/shards/", f"loadtests/{run_id}/merged/")) for x in after)
          and not any(x.startswith(f"loadtests/{run_id}/shards/9") for x in after), after)

    # wait: polls `kubectl get job` until Complete (0) or Failed (1); the states come from a file
    states = root / "job-states"
    fake = env.bin / "kubectl"
    fake.write_text('#!/bin/sh\necho "$*" >>"$KUBECTL_LOG"\n'
                    'first=$(head -n 1 "$STATES"); rest=$(sed 1d "$STATES" 2>/dev/null || tail -n +2 "$STATES")\n'
                    '[ -n "$rest" ] && printf "%s\\n" "$rest" >"$STATES"\n'
                    '[ "$first" = ERR ] && { echo "forbidden" >&2; exit 1; }\nprintf "%s" "$first"\n')
    fake.chmod(0o755)
    calls = root / "wait.calls"
    wenv = dict(SHARD_JOB="rel-injector-0123456789", SHARDS=4, POLL_SECONDS=0, KUBECTL_LOG=calls, STATES=states)
    states.write_text(" \n1 \nERR\n3 \n4 Complete\n")
    w = env.run("loadtest-results.sh", "wait", **wenv)
    log = calls.read_text().splitlines()
    check("wait polls the shard Job (get only) until it is Complete, through counts and an API error",
          w.returncode == 0 and len(log) == 5 and all(l.startswith("get job rel-injector-0123456789 -o jsonpath=") for l in log)
          and "3 of 4 shards" in w.stderr and "forbidden" in w.stderr, (w.stderr, log))
    states.write_text("2 Failed\n")
    w = env.run("loadtest-results.sh", "wait", **wenv)
    check("wait fails when the shard Job failed (no merge of a partial run)", w.returncode == 1 and "failed" in w.stderr, w.stderr)
    states.write_text("1 \n")
    w = env.run("loadtest-results.sh", "wait", **{**wenv, "WAIT_TIMEOUT": 1, "POLL_SECONDS": 1})
    check("wait gives up after WAIT_TIMEOUT", w.returncode == 1 and "gave up" in w.stderr, w.stderr)


def real_merge(injector: str, work: Path):
    """The chart's merge container's command on the downloaded shards; returns the merged report, checked
    against the shards' own counts (exact sums, histogram counts that add up, the run id kept)."""
    out = work / "merged"
    out.mkdir()
    reports = [work / "shards" / str(i) / "report.json" for i in range(2)]
    m = subprocess.run([injector, "merge", f"--out={out}/report.json", f"--histogram-log={out}/histogram.hlog",
                        f"--plot={out}/latency.svg", *map(str, reports)], capture_output=True, text=True, timeout=60)
    check("the real iotex-injector merge merges the downloaded shards", m.returncode == 0, m.stderr)
    if m.returncode != 0:
        return None
    parts = [json.loads(r.read_text()) for r in reports]
    merged = json.loads((out / "report.json").read_text())
    sums = {k: sum(p[k] for p in parts) for k in ("scheduled", "sent", "accepted", "included")}
    check("the merged counts are the shards' sums (120 of each for the recorded run)",
          {k: merged[k] for k in sums} == sums and sums["included"] == 120, (merged, sums))
    check("the merged latency histograms hold every shard's samples",
          merged["submit_latency_ms"]["count"] == sum(p["submit_latency_ms"]["count"] for p in parts)
          and merged["inclusion_latency_ms"]["count"] == sum(p["inclusion_latency_ms"]["count"] for p in parts),
          (merged["submit_latency_ms"], merged["inclusion_latency_ms"]))
    check("the merged report keeps the run id", merged["run_id"] == parts[0]["run_id"] == "fixture-run-1",
          merged["run_id"])
    again = subprocess.run([injector, "merge", f"--out={work}/twice.json", *map(str, reports + reports[:1])],
                           capture_output=True, text=True, timeout=60)
    check("merge refuses a shard given twice (overlapping shards), with a message",
          again.returncode != 0 and again.stderr.strip() != "" and not (work / "twice.json").exists(), again.stderr)
    return merged


if __name__ == "__main__":
    sys.exit(main())
