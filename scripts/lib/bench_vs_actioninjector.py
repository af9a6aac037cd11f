#!/usr/bin/env python3
"""The measuring half of scripts/bench-vs-actioninjector.sh: everything that reads /proc, asks the chain or
does arithmetic, so the shell script only sequences runs.

Subcommands (each prints or writes JSON; the script chains them):
  keys CLUSTER_JSON DIR            DIR/keys.txt (ours: one hex key a line), DIR/keypairs.yaml (theirs:
                                   pkPairs of pubKey/priKey, the public key derived with `cryptography`)
  senders-from-report REPORT       our pool's 0x addresses (from our report)
  before-from-report REPORT H      a snapshot as of our run's start (its start nonces, height H)
  snapshot WEB3 [ADDR...] > F      head height and each address's pending nonce
  measure OUT -- CMD...            runs CMD, polls /proc/<pid>/status for VmHWM every 100 ms, and reads the
                                   final utime+stime of /proc/<pid>/stat while the exited child is still a
                                   zombie (waitid WNOWAIT), so no CPU is lost between the last poll and exit
  senders-from-log LOG             the io1 addresses actioninjector logs as "generated account", as 0x
  settle WEB3 BEFORE ADDR...       waits (bounded) until the blocks since BEFORE's height hold as many
                                   actions of ADDR as their pending nonces rose; prints both counts
  knee REPORT                      the latency knee of a --steps ramp (see knee_rate)
  row ...                          one table row as a JSON line (see the script)
  table ROWS.jsonl                 the markdown table and the summary line
  --self-test                      checks the parsers and the arithmetic on small inputs

Why the chain counts are pending-nonce rises: IoTeX v2.1.0 answers eth_getTransactionCount with the pending
nonce for every block tag, so "on chain" is made exact by also counting the senders' actions in the blocks,
and waiting until the two agree (or the bound runs out, which the table then shows).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request

BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


# ---- /proc parsing -------------------------------------------------------------------------------------

def parse_stat(text: str) -> tuple[int, int]:
    """utime and stime (clock ticks) from a /proc/<pid>/stat line.

    The command name (field 2) is in parentheses and may itself hold spaces and ')', so split after the
    *last* ')': the next field is field 3 (state), which puts utime (field 14) at index 11."""
    rest = text[text.rindex(")") + 2:].split()
    if len(rest) < 13:
        raise ValueError(f"short /proc stat line: {text!r}")
    return int(rest[11]), int(rest[12])


def parse_hwm_kb(text: str) -> int | None:
    """VmHWM (peak resident set, kB) from /proc/<pid>/status; None for a zombie, which has no memory."""
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
            raise ValueError(f"malformed VmHWM line: {line!r}")
    return None


def measure(out: str, cmd: list[str], poll_s: float = 0.1) -> dict:
    """Runs cmd to its end; returns cpu seconds (utime+stime), peak RSS and wall time of that process."""
    import subprocess

    hz = os.sysconf("SC_CLK_TCK")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=open(out + ".log", "w"), stderr=subprocess.STDOUT)
    hwm = 0
    ticks = (0, 0)
    while True:
        # WNOWAIT leaves the exited child a zombie, whose stat still holds its final CPU times.
        done = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        try:
            with open(f"/proc/{proc.pid}/stat") as f:
                ticks = parse_stat(f.read())
            with open(f"/proc/{proc.pid}/status") as f:
                hwm = max(hwm, parse_hwm_kb(f.read()) or 0)
        except (FileNotFoundError, ProcessLookupError):
            pass
        if done is not None:
            break
        time.sleep(poll_s)
    rc = proc.wait()
    res = {"cpu_s": (ticks[0] + ticks[1]) / hz, "hwm_kb": hwm, "wall_s": time.monotonic() - start, "rc": rc}
    with open(out, "w") as f:
        json.dump(res, f)
    return res


# ---- addresses -----------------------------------------------------------------------------------------

def _bech32_polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (b >> i) & 1 else 0
    return chk


def io_to_hex(addr: str) -> str:
    """io1… (bech32, hrp "io", 20-byte payload) → 0x…; ValueError on anything else, checksum included."""
    a = addr.strip().lower()
    if not a.startswith("io1") or len(a) != 41 or any(c not in BECH32 for c in a[3:]):
        raise ValueError(f"not an io1 address: {addr!r}")
    data = [BECH32.index(c) for c in a[3:]]
    if _bech32_polymod([ord(c) >> 5 for c in "io"] + [0] + [ord(c) & 31 for c in "io"] + data) != 1:
        raise ValueError(f"bad checksum in {addr!r}")
    acc = bits = 0
    out = bytearray()
    for v in data[:-6]:
        acc, bits = (acc << 5) | v, bits + 5
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if len(out) != 20:
        raise ValueError(f"{addr!r} does not hold 20 bytes")
    return "0x" + out.hex()


def senders_from_log(text: str) -> list[str]:
    """The fresh accounts actioninjector sends from: it logs each as `generated account {"addr": "io1…"}`."""
    out = []
    for line in text.splitlines():
        if "generated account" in line and '"addr": "' in line:
            out.append(io_to_hex(line.split('"addr": "', 1)[1].split('"', 1)[0]))
    return out


# ---- chain ---------------------------------------------------------------------------------------------

def rpc(url: str, method: str, params: list):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        reply = json.load(r)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def snapshot(url: str, addrs: list[str]) -> dict:
    return {"height": int(rpc(url, "eth_blockNumber", []), 16),
            "nonces": {a: int(rpc(url, "eth_getTransactionCount", [a, "latest"]), 16) for a in addrs}}


def count_in_blocks(url: str, lo: int, hi: int, addrs: set[str]) -> int:
    n = 0
    for h in range(lo, hi + 1):
        blk = rpc(url, "eth_getBlockByNumber", [hex(h), True])
        n += sum(1 for tx in blk["transactions"] if tx.get("from", "").lower() in addrs)
    return n


def settle(url: str, before: dict, addrs: list[str], timeout_s: float) -> dict:
    """Nonce rise of addrs since `before`, and their actions in blocks since then; waits (at most timeout_s)
    for the pool to drain into blocks so the two can agree."""
    want = {a.lower() for a in addrs}
    deadline = time.monotonic() + timeout_s
    included, scanned = 0, before["height"]
    while True:
        after = snapshot(url, addrs)
        rise = sum(after["nonces"][a] - before["nonces"].get(a, 0) for a in addrs)
        if after["height"] > scanned:
            included += count_in_blocks(url, scanned + 1, after["height"], want)
            scanned = after["height"]
        if included >= rise or time.monotonic() > deadline:
            return {"nonce_rise": rise, "included_on_chain": included, "to_height": scanned}
        time.sleep(1.0)


# ---- arithmetic ----------------------------------------------------------------------------------------

def knee_rate(report: dict, factor: float = 1.5) -> float:
    """The knee of a --steps ramp: the highest offered rate up to which every step kept its inclusion p99
    within `factor` x the first step's, the rate past which the cluster queues rather than keeps pace.
    On bench-iotex-capacity.sh's quiet run in docs/benchmarks.md this gives 400/s (p99 4.2, 4.2, 4.3, then
    6.6 s at 600/s). A step with no inclusion timed at all also ends the ramp: a stalled chain includes
    nothing, and nothing included has no latency, which must not pass as fast. (Only a latency is asked
    of a step, not a share of its actions: actions found included only by the end-of-run reconciliation
    carry no inclusion latency, so the per-step counts may be below the included total.)"""
    steps = report.get("steps") or []
    if not steps:
        raise ValueError("the report has no steps table")

    def kept_pace(s: dict, base: float | None) -> bool:
        inc = s["inclusion_latency_ms"]
        if inc["count"] <= 0:
            return False
        return base is None or inc["p99"] <= factor * base

    if not kept_pace(steps[0], None):
        raise ValueError(f"the first step ({steps[0]['rate_to']:.0f}/s) already fell behind: start the ramp lower")
    base, knee = steps[0]["inclusion_latency_ms"]["p99"], steps[0]["rate_to"]
    for s in steps[1:]:
        if not kept_pace(s, base):
            break
        knee = s["rate_to"]
    return knee


def rate_error_pct(actions: int, duration_s: float, target: float) -> float:
    """Signed error of the achieved rate against the target, in %."""
    if duration_s <= 0 or target <= 0:
        raise ValueError("duration and target must be positive")
    return 100.0 * (actions / duration_s - target) / target


def cpu_us_per_action(cpu_s: float, actions: int) -> float | None:
    return None if actions <= 0 else cpu_s * 1e6 / actions


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    """Markdown table (one row per tool and rate) and the summary line, last.

    Summary: CPU per action is the ratio of each tool's CPU over all its runs divided by all its on-chain
    actions (so it weighs rates by their action counts); the rate error is each tool's worst |error|."""
    out = ["| rate/s | tool | nonce rise | in blocks | achieved/s | rate error % | CPU µs/action | peak RSS MB "
           "| tool's own counts | agree with chain |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['tool']} | {r['nonce_rise']} | {r['included_on_chain']} "
                   f"| {_fmt(r['achieved'], '.1f')} "
                   f"| {_fmt(r['rate_error_pct'], '+.2f')} | {_fmt(r['cpu_us_per_action'], '.0f')} "
                   f"| {r['hwm_kb'] / 1024:.0f} | {r['own_counts']} | {r['agree']} |")
    tot = {}
    for tool in ("ours", "actioninjector"):
        mine = [r for r in rows if r["tool"] == tool]
        acts = sum(r["nonce_rise"] for r in mine)
        tot[tool] = (cpu_us_per_action(sum(r["cpu_s"] for r in mine), acts),
                     max((abs(r["rate_error_pct"]) for r in mine if r["rate_error_pct"] is not None),
                         default=None))
    (oc, oe), (tc, te) = tot["ours"], tot["actioninjector"]
    ratio = None if oc is None or not tc else oc / tc
    out.append("")
    out.append(f"ours/actioninjector cpu-per-action {_fmt(ratio, '.2f')}x, "
               f"rate error ours {_fmt(oe, '.2f')} % theirs {_fmt(te, '.2f')} %")
    return "\n".join(out)


def make_row(args) -> dict:
    """One run: its /proc measure, its chain counts and (ours) its report, as a table row."""
    m = json.load(open(args.measure))
    c = json.load(open(args.chain))
    rise, incl = c["nonce_rise"], c["included_on_chain"]
    row = {"label": args.label, "tool": args.tool, "target": args.rate, "nonce_rise": rise,
           "included_on_chain": incl, "cpu_s": m["cpu_s"], "hwm_kb": m["hwm_kb"], "rc": m["rc"],
           "achieved": rise / args.duration, "rate_error_pct": rate_error_pct(rise, args.duration, args.rate),
           "cpu_us_per_action": cpu_us_per_action(m["cpu_s"], rise)}
    if args.report:
        r = json.load(open(args.report))
        ok = r["accepted"] == rise and r["included"] == incl
        row["own_counts"] = f"accepted {r['accepted']}, included {r['included']}"
        row["agree"] = "yes" if ok else f"no (chain: {rise} accepted, {incl} included)"
    else:
        errs = args.failures
        row["own_counts"] = f"none (logs {errs} failed sends)"
        row["agree"] = "n/a (reports none)"
    return row


# ---- entry points --------------------------------------------------------------------------------------

def write_keys(cluster_json: str, d: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    keys = json.load(open(cluster_json))["funded_keys"]
    pairs = ["pkPairs:"]
    for k in keys:
        pub = ec.derive_private_key(int(k, 16), ec.SECP256K1()).public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        pairs.append(f"- pubKey: {pub.hex()}\n  priKey: {k}")
    for name, text in (("keys.txt", "\n".join(keys)), ("keypairs.yaml", "\n".join(pairs))):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)


def senders_from_report(report: dict) -> list[str]:
    """Our pool's 0x addresses, as our report lists them (`account_nonces`)."""
    return [a["address"].lower() for a in report.get("account_nonces") or []]


def before_from_report(report: dict, height: int) -> dict:
    """A `snapshot` as of a run's start, from the start nonces our injector read for its accounts."""
    return {"height": height, "nonces": {a["address"].lower(): a["start_nonce"] for a in report["account_nonces"]}}


def self_test() -> int:
    fails = []

    def check(name, got, want):
        if got != want:
            fails.append(f"{name}: got {got!r}, want {want!r}")

    # A command name with spaces and ')' must not shift the fields.
    stat = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 3 0 100 1000 50"
    check("parse_stat", parse_stat(stat), (250, 37))
    for bad in ("", "1 (x) S 1 2", "no paren at all"):
        try:
            parse_stat(bad)
            fails.append(f"parse_stat accepted {bad!r}")
        except ValueError:
            pass
    check("hwm", parse_hwm_kb("Name:\tx\nVmPeak:\t 9 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 1 kB\n"), 20480)
    check("hwm zombie", parse_hwm_kb("Name:\tx\nState:\tZ (zombie)\n"), None)
    try:
        parse_hwm_kb("VmHWM:\tlots kB\n")
        fails.append("parse_hwm_kb accepted a non-number")
    except ValueError:
        pass
    # iotex-node.md §6, identityset[0].
    check("io_to_hex", io_to_hex("io1juvx5g063eu4ts832nukp4vgcwk2gnc5cu9ayd"),
          "0x97186a21fa8e7955c0f154f960d588c3aca44f14")
    for bad in ("io1juvx5g063eu4ts832nukp4vgcwk2gnc5cu9ayx", "0x97186a21fa8e7955c0f154f960d588c3aca44f14",
                "io1", "io1juvx5g063eu4ts832nukp4vgcwk2gnc5cu9ay!"):
        try:
            io_to_hex(bad)
            fails.append(f"io_to_hex accepted {bad!r}")
        except ValueError:
            pass
    log = ('2026 INFO cmd/inject.go:139 loaded account {"addr": "io1mflp9m6hcgm2qcghchsdqj3z3eccrnekx9p0ms"}\n'
           '2026 INFO cmd/inject.go:153 generated account {"addr": "io1juvx5g063eu4ts832nukp4vgcwk2gnc5cu9ayd"}\n')
    check("senders_from_log", senders_from_log(log), ["0x97186a21fa8e7955c0f154f960d588c3aca44f14"])
    rep = {"account_nonces": [{"address": "0xAB", "start_nonce": 7}]}
    check("senders_from_report", senders_from_report(rep), ["0xab"])
    check("before_from_report", before_from_report(rep, 12), {"height": 12, "nonces": {"0xab": 7}})
    check("rate error", round(rate_error_pct(2970, 30, 100), 6), -1.0)
    check("cpu per action", cpu_us_per_action(1.5, 3000), 500.0)
    check("cpu per action none", cpu_us_per_action(1.5, 0), None)
    step = lambda rate, p99, inc, sub: {"rate_to": rate, "inclusion_latency_ms": {"p99": p99, "count": inc},  # noqa: E731
                                        "submit_latency_ms": {"count": sub}}
    ramp = {"steps": [step(200, 4000, 2000, 2000), step(300, 4200, 2990, 3000), step(400, 5900, 3990, 4000),
                      step(500, 6100, 5000, 5000), step(600, 4100, 6000, 6000)]}
    check("knee stops at the first slow step", knee_rate(ramp), 400)
    # A stalled chain: nothing included has p99 0, which must not look fast.
    stalled = {"steps": [step(200, 4000, 2000, 2000), step(300, 4100, 2000, 3000), step(400, 0, 0, 4000)]}
    check("knee stops where inclusions stall", knee_rate(stalled), 300)
    # docs/benchmarks.md, the capacity ramp on a quiet machine (p99 ms per step).
    quiet = {"steps": [step(r, p, 1, 1) for r, p in ((100, 4248), (200, 4239), (400, 4334), (600, 6631), (800, 6861))]}
    check("knee of the documented capacity run", knee_rate(quiet), 400)
    for bad in ({"steps": []}, {}, {"steps": [step(200, 0, 0, 2000)]}):
        try:
            knee_rate(bad)
            fails.append(f"knee_rate accepted {bad!r}")
        except ValueError:
            pass
    row = lambda tool, lbl, rise, cpu, err: {  # noqa: E731
        "label": lbl, "tool": tool, "nonce_rise": rise, "achieved": rise / 30, "rate_error_pct": err,
        "cpu_s": cpu, "cpu_us_per_action": cpu_us_per_action(cpu, rise), "hwm_kb": 20480, "included_on_chain": rise,
        "own_counts": "x", "agree": "yes"}
    t = table([row("ours", "10", 300, 0.3, -0.5), row("actioninjector", "10", 300, 0.6, 1.25),
               row("ours", "100", 3000, 1.2, 0.2), row("actioninjector", "100", 2700, 2.4, -10.0)])
    check("summary line", t.splitlines()[-1],
          "ours/actioninjector cpu-per-action 0.45x, rate error ours 0.50 % theirs 10.00 %")
    check("table rows", len([l for l in t.splitlines() if l.startswith("| ")]), 5)
    check("empty summary", table([]).splitlines()[-1],
          "ours/actioninjector cpu-per-action -x, rate error ours - % theirs - %")
    for f in fails:
        print("self-test FAIL", f)
    print(f"self-test {'ok' if not fails else 'FAIL'}: {len(fails)} failures")
    return 1 if fails else 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("keys")
    p.add_argument("cluster_json")
    p.add_argument("dir")
    p = sub.add_parser("snapshot")
    p.add_argument("web3")
    p.add_argument("addrs", nargs="*")
    p = sub.add_parser("measure")
    p.add_argument("out")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("senders-from-log")
    p.add_argument("log")
    p = sub.add_parser("senders-from-report")
    p.add_argument("report")
    p = sub.add_parser("before-from-report")
    p.add_argument("report")
    p.add_argument("height", type=int)
    p = sub.add_parser("settle")
    p.add_argument("web3")
    p.add_argument("before")
    p.add_argument("addrs", nargs="+")
    p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("knee")
    p.add_argument("report")
    p = sub.add_parser("row")
    for a in ("--label", "--tool", "--measure", "--chain"):
        p.add_argument(a, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--report")
    p.add_argument("--failures", type=int, default=0)
    p = sub.add_parser("table")
    p.add_argument("rows")
    a = ap.parse_args()
    try:
        return dispatch(ap, a)
    except (ValueError, KeyError, OSError, RuntimeError) as e:
        print(f"bench-vs-actioninjector: error: {a.cmd}: {e}", file=sys.stderr)
        return 1


def dispatch(ap: argparse.ArgumentParser, a: argparse.Namespace) -> int:
    if a.cmd == "keys":
        write_keys(a.cluster_json, a.dir)
    elif a.cmd == "snapshot":
        print(json.dumps(snapshot(a.web3, a.addrs)))
    elif a.cmd == "measure":
        argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
        if not argv:
            ap.error("measure needs a command after --")
        print(json.dumps(measure(a.out, argv)))
    elif a.cmd == "senders-from-log":
        print("\n".join(senders_from_log(open(a.log, errors="replace").read())))
    elif a.cmd == "senders-from-report":
        print("\n".join(senders_from_report(json.load(open(a.report)))))
    elif a.cmd == "before-from-report":
        print(json.dumps(before_from_report(json.load(open(a.report)), a.height)))
    elif a.cmd == "settle":
        print(json.dumps(settle(a.web3, json.load(open(a.before)), a.addrs, a.timeout)))
    elif a.cmd == "knee":
        print(f"{knee_rate(json.load(open(a.report))):.0f}")
    elif a.cmd == "row":
        print(json.dumps(make_row(a)))
    elif a.cmd == "table":
        print(table([json.loads(line) for line in open(a.rows) if line.strip()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
