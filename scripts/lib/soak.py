#!/usr/bin/env python3
"""The measuring half of scripts/soak.sh: a steady read load through the gateway, a sample of both binaries
every interval, and the verdict.

    soak.py run --gateway URL --gateway-pid PID --injector-pid PID --out DIR [--interval S] [--warmup S]
                [--read-rate N]
    soak.py verdict --out DIR        # re-judges DIR/samples.json + DIR/report.json (no processes needed)
    soak.py --self-test              # the verdict's arithmetic on made-up samples

`run` samples until the injector process exits (it ends by itself after its --duration and confirmation;
a hard cap of 2x the planned time bounds the loop anyway), then writes DIR/soak.json (samples, figures,
verdict), DIR/soak.svg (RSS, fds, threads and read p99 over time) and prints a table. Exit 0 when the run
passes: after the warm-up, neither binary's RSS grows by more than 20 MB, its fd count does not grow (a
small allowance for connections being opened at the sampling instant), and the injector's report has
accepted == included. Drift and growth compare the median of the first third of the samples after the
warm-up with the median of the last third (pooled connections come and go; a leak climbs).

The read load is the Explorer's most common calls, each naming an account no other call names, so the
gateway's cache cannot answer them; one keep-alive connection at --read-rate calls/s; its p99 per interval
is the p99 in the samples. Loopback only: --gateway must be a 127.0.0.0/8 URL.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

RSS_DRIFT_MB = 20.0
FD_ALLOWANCE = 8  # pooled connections to 5 nodes and the clients' come and go


def proc_sample(pid):
    """RSS in MB, open fds and threads of a live process, or None once it is gone."""
    try:
        status = open(f"/proc/{pid}/status").read()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip().startswith("Z"):
        return None  # exited, not yet reaped by soak.sh
    rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])
    return {"rss_mb": round(rss_kb / 1024, 2), "fds": fds, "threads": int(fields.get("Threads", "0").strip())}


class Reader(threading.Thread):
    """Calls the gateway at a fixed rate on one keep-alive connection; keeps latencies per interval."""

    def __init__(self, url, rate, stop):
        super().__init__(daemon=True)
        u = urllib.parse.urlparse(url)
        if not (u.hostname or "").startswith("127."):
            raise SystemExit(f"soak: the gateway URL must be on 127.0.0.0/8 (loopback), not {url}")
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.rate, self.stop = rate, stop
        self.lock = threading.Lock()
        self.latencies, self.errors, self.calls, self.sample_errors = [], 0, 0, []

    def body(self, i):
        account = "0x%040x" % (0x5000_0000_0000 + i)
        method, params = [("eth_getBalance", [account, "latest"]), ("eth_blockNumber", []),
                          ("eth_getTransactionCount", [account, "latest"]),
                          ("eth_getBlockByNumber", ["latest", False])][i % 4]
        return json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})

    def run(self):
        conn, i, start = None, 0, time.monotonic()
        while not self.stop.is_set():
            due = start + i / self.rate
            delay = due - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            t0 = time.monotonic()
            ok, why = False, ""
            try:
                conn = conn or http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("POST", self.path, self.body(i), {"content-type": "application/json"})
                r = conn.getresponse()
                answer = json.loads(r.read())
                ok = r.status == 200 and "result" in answer
                why = "" if ok else f"HTTP {r.status}: {answer.get('error')}"
            except (OSError, http.client.HTTPException, ValueError) as e:
                why = f"{type(e).__name__}: {e}"
                conn = None
            # Latency from the intended send time, so a stalled gateway cannot hide (coordinated omission).
            took = (time.monotonic() - min(due, t0)) * 1000
            with self.lock:
                self.calls += 1
                self.latencies.append(took)
                if not ok:
                    self.errors += 1
                    if len(self.sample_errors) < 5:
                        self.sample_errors.append(why)
            i += 1

    def take(self):
        with self.lock:
            lat, self.latencies = self.latencies, []
            return lat


def cache_mb(admin):
    """The gateway's cache size (iotex_gateway_cache_bytes) in MB from its admin /metrics, or None."""
    if not admin:
        return None
    try:
        u = urllib.parse.urlparse(admin)
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            if line.startswith("iotex_gateway_cache_bytes "):
                return round(float(line.split()[1]) / 1048576, 2)
    except (OSError, http.client.HTTPException, ValueError):
        pass
    return None


def p99(values):
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(len(s) * 0.99))], 2)


def judge(samples, report, warmup_s):
    """The verdict: a list of failures (empty = pass) and the figures it used."""
    after = [s for s in samples if s["t"] >= warmup_s]
    failures, figures = [], {}
    if len(after) < 2:
        return [f"only {len(after)} samples after the {warmup_s:.0f} s warm-up; run longer"], figures
    for name in ("gateway", "injector"):
        points = [s[name] for s in after if s.get(name)]
        if len(points) < 2:
            failures.append(f"{name}: fewer than 2 samples after the warm-up")
            continue
        # A leak climbs; connection churn wobbles. Compare the median of the first third of the samples after
        # the warm-up with the median of the last third, so one sample taken while a connection was being
        # opened is neither a leak nor a baseline.
        third = max(1, len(points) // 3)
        med = lambda xs: sorted(xs)[len(xs) // 2]
        first, last = points[:third], points[-third:]
        # RSS net of the gateway's response cache when the samples have it (see `run`).
        rss = lambda p: p.get("rss_less_cache_mb", p["rss_mb"])
        f = {"rss_mb_start": med([rss(p) for p in first]), "rss_mb_end": med([rss(p) for p in last]),
             "rss_mb_max": max(p["rss_mb"] for p in points),
             "fds_start": med([p["fds"] for p in first]), "fds_end": med([p["fds"] for p in last]),
             "fds_max": max(p["fds"] for p in points),
             "threads_start": med([p["threads"] for p in first]), "threads_end": med([p["threads"] for p in last]),
             "net_of_cache": all("rss_less_cache_mb" in p for p in points)}
        if f["net_of_cache"]:
            f["cache_mb_end"] = points[-1].get("cache_mb")
        f["rss_drift_mb"] = round(f["rss_mb_end"] - f["rss_mb_start"], 2)
        figures[name] = f
        if f["rss_drift_mb"] > RSS_DRIFT_MB:
            failures.append(f"{name}: RSS grew {f['rss_drift_mb']} MB after the warm-up (limit {RSS_DRIFT_MB})")
        if f["fds_end"] > f["fds_start"] + FD_ALLOWANCE:
            failures.append(f"{name}: fds grew from {f['fds_start']} to {f['fds_end']} (medians of the first and last third)")
    if report is None:
        failures.append("no injector report")
    else:
        keys = ("scheduled", "sent", "accepted", "included", "pending_at_end", "dropped")
        figures["injector_report"] = {k: report.get(k) for k in keys}
        if report.get("accepted") != report.get("included"):
            failures.append(f"accepted {report.get('accepted')} != included {report.get('included')}")
        if not report.get("accepted"):
            failures.append("the injector had no accepted action")
    return failures, figures


def svg(samples, path):
    """Four small line charts over time: RSS, fds, threads (both binaries) and the read p99."""
    series = [("RSS MB", "rss_mb"), ("open fds", "fds"), ("threads", "threads"), ("read p99 ms", None)]
    w, h, pad = 720, 150, 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h * 4 + 20}" font-family="sans-serif" font-size="11">']
    tmax = max((s["t"] for s in samples), default=1) or 1
    for row, (title, key) in enumerate(series):
        y0 = row * h + 20
        lines = [("gateway", "#1f77b4"), ("injector", "#d62728")] if key else [("read", "#2ca02c")]
        pts = {n: [(s["t"], s[n][key] if key else s.get("read_p99_ms")) for s in samples
                   if (s.get(n) if key else s.get("read_p99_ms") is not None)] for n, _ in lines}
        vmax = max((v for p in pts.values() for _, v in p if v is not None), default=1) or 1
        out.append(f'<text x="{pad}" y="{y0 - 4}">{title} (max {vmax:g})</text>')
        out.append(f'<rect x="{pad}" y="{y0}" width="{w - 2 * pad}" height="{h - 40}" fill="none" stroke="#ccc"/>')
        for n, color in lines:
            coords = " ".join(f"{pad + (t / tmax) * (w - 2 * pad):.1f},{y0 + (h - 40) * (1 - v / vmax):.1f}"
                              for t, v in pts[n] if v is not None)
            if coords:
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"><title>{n}</title></polyline>')
    out.append(f'<text x="{pad}" y="{h * 4 + 15}">time 0 .. {tmax:.0f} s; blue gateway, red injector, green reads</text></svg>')
    open(path, "w").write("\n".join(out))


def run(a):
    os.makedirs(a.out, exist_ok=True)
    stop = threading.Event()
    reader = Reader(a.gateway, a.read_rate, stop)
    reader.start()
    samples, t0 = [], time.monotonic()
    deadline = t0 + a.max_seconds
    next_sample = t0 + a.interval
    while time.monotonic() < deadline:
        # Wake each second so the end of the injector ends the run at once, not up to an interval later.
        stop.wait(max(0.0, min(1.0, next_sample - time.monotonic())))
        gone = proc_sample(a.injector_pid) is None
        if time.monotonic() < next_sample and not gone:
            continue
        next_sample += a.interval
        lat = reader.take()
        s = {"t": round(time.monotonic() - t0, 1), "gateway": proc_sample(a.gateway_pid),
             "injector": proc_sample(a.injector_pid), "read_p99_ms": p99(lat), "reads": len(lat)}
        cache = cache_mb(a.gateway_admin)
        if s["gateway"] is not None and cache is not None:
            # The response cache is a store bounded by the gateway's cache-max-bytes, filled on purpose
            # (finalized receipts and blocks never expire); what must stay flat is the rest of the process.
            s["gateway"]["cache_mb"] = cache
            s["gateway"]["rss_less_cache_mb"] = round(s["gateway"]["rss_mb"] - cache, 2)
        samples.append(s)
        g, i = s["gateway"] or {}, s["injector"] or {}
        print(f"soak: t={s['t']:>7.1f}s gateway rss {g.get('rss_mb')} MB (cache {g.get('cache_mb')}) fds {g.get('fds')} threads {g.get('threads')} | "
              f"injector rss {i.get('rss_mb')} MB fds {i.get('fds')} threads {i.get('threads')} | reads {s['reads']} p99 {s['read_p99_ms']} ms",
              flush=True)
        if s["injector"] is None:
            break
    stop.set()
    reader.join(15)
    json.dump({"samples": samples, "reads": reader.calls, "read_errors": reader.errors,
               "read_error_samples": reader.sample_errors, "warmup_s": a.warmup}, open(f"{a.out}/samples.json", "w"), indent=1)
    return verdict(a.out)


def verdict(out):
    data = json.load(open(f"{out}/samples.json"))
    report = json.load(open(f"{out}/report.json")) if os.path.exists(f"{out}/report.json") else None
    # The last sample is taken as the injector exits (it may be gone): judge the ones where both were alive.
    samples = [s for s in data["samples"] if s.get("gateway") and s.get("injector")]
    failures, figures = judge(samples, report, data["warmup_s"])
    if data["read_errors"]:
        failures.append(f"{data['read_errors']} of {data['reads']} reads failed: {data['read_error_samples']}")
    p99s = [s["read_p99_ms"] for s in samples if s.get("read_p99_ms") is not None]
    figures["reads"] = {"calls": data["reads"], "errors": data["read_errors"], "p99_ms_max": max(p99s, default=None),
                        "p99_ms_last": p99s[-1] if p99s else None}
    json.dump({"passed": not failures, "failures": failures, "figures": figures, **data},
              open(f"{out}/soak.json", "w"), indent=1)
    svg(data["samples"], f"{out}/soak.svg")
    print(json.dumps(figures, indent=1))
    for f in failures:
        print(f"soak: FAIL {f}", file=sys.stderr)
    print(f"soak: {'PASS' if not failures else 'FAIL'} ({len(samples)} samples; {out}/soak.json, {out}/soak.svg)")
    return 0 if not failures else 1


def self_test():
    def s(t, rss, fds, thr=8):
        p = {"rss_mb": rss, "fds": fds, "threads": thr}
        return {"t": t, "gateway": p, "injector": dict(p), "read_p99_ms": 3.0}
    good = [s(10, 50, 20), s(70, 60, 21), s(130, 62, 22), s(190, 61, 20)]
    cached = [s(60 + 10 * i, 33 + 4 * i, 52) for i in range(9)]
    for i, p in enumerate(cached):  # RSS rises with the cache only: net of it, flat
        p["gateway"].update(cache_mb=4 * i, rss_less_cache_mb=33)
    wobble = [s(60 + 10 * i, 33 + (i % 2) * 0.5, 52 + (i * 3) % 6) for i in range(9)]
    leak = [s(60 + 10 * i, 33 + 4 * i, 50 + 3 * i) for i in range(9)]
    rep = {"accepted": 100, "included": 100, "scheduled": 100, "sent": 100}
    cases = [
        (good, rep, 60, []),
        (good[:2], rep, 60, ["only 1 samples"]),
        ([s(70, 60, 20), s(130, 85, 20)], rep, 60, ["gateway: RSS grew 25", "injector: RSS grew 25"]),
        ([s(70, 60, 20), s(130, 60, 40)], rep, 60, ["gateway: fds grew", "injector: fds grew"]),
        ([s(70, 60, 20), s(130, 60, 28)], rep, 60, []),
        (wobble, rep, 60, []),
        (cached, rep, 60, ["injector: RSS grew"]),
        (leak, rep, 60, ["gateway: RSS grew 24", "gateway: fds grew", "injector: RSS grew", "injector: fds grew"]),
        (good, {**rep, "included": 99}, 60, ["accepted 100 != included 99"]),
        (good, None, 60, ["no injector report"]),
        (good, {**rep, "accepted": 0, "included": 0}, 60, ["no accepted action"]),
    ]
    bad = 0
    for samples, report, warm, want in cases:
        failures, _ = judge(samples, report, warm)
        ok = len(failures) == len(want) and all(any(w in f for f in failures) for w in want)
        bad += not ok
        if not ok:
            print(f"self-test FAIL: want {want}, got {failures}", file=sys.stderr)
    assert p99([]) is None and p99([5.0]) == 5.0 and p99(list(map(float, range(1, 101)))) == 100.0
    print(f"soak.py self-test: {len(cases) - bad} of {len(cases)} cases pass")
    return 1 if bad else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--gateway", required=True)
    r.add_argument("--gateway-pid", type=int, required=True)
    r.add_argument("--injector-pid", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--interval", type=float, default=60.0)
    r.add_argument("--warmup", type=float, default=60.0)
    r.add_argument("--read-rate", type=float, default=20.0)
    r.add_argument("--gateway-admin", default="", help="admin URL, to judge RSS net of the response cache")
    r.add_argument("--max-seconds", type=float, required=True)
    v = sub.add_parser("verdict")
    v.add_argument("--out", required=True)
    a = p.parse_args()
    return run(a) if a.cmd == "run" else verdict(a.out)


if __name__ == "__main__":
    sys.exit(main())
