#!/usr/bin/env python3
"""Checks the Grafana dashboards in k8s/iotex/files/dashboards:
  - every panel has at least one query, and every query is valid PromQL: each `expr` (with the Grafana
    variables $namespace and $__rate_interval substituted) becomes a recording rule, and
    `promtool check rules` parses them all;
  - every metric a query names is one the nodes, the gateway or the injector export (the contract lists
    below), so a renamed metric cannot leave a panel silently empty;
  - no Grafana variable other than the dashboard's own is used.
usage: check_dashboards.py DASHBOARD_DIR   Prints `N passed, N failed`."""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

NODE = {"iotex_heartbeat_status", "iotex_actpool_rejection_metrics", "iotex_web3_api_metrics",
        "iotex_web3_api_latency", "iotex_p2p_message_counter"}
GATEWAY = {"iotex_gateway_requests_total", "iotex_gateway_request_duration_seconds",
           "iotex_gateway_upstream_requests_total", "iotex_gateway_upstream_up", "iotex_gateway_upstream_head_block",
           "iotex_gateway_upstream_lag_blocks", "iotex_gateway_best_head_block", "iotex_gateway_rate_limited_total",
           "iotex_gateway_retries_total", "iotex_gateway_upstream_in_flight"}
INJECTOR = {"iotex_injector_scheduled_total", "iotex_injector_sent_total", "iotex_injector_accepted_total",
            "iotex_injector_rejected_total", "iotex_injector_late_total", "iotex_injector_included_total",
            "iotex_injector_in_flight", "iotex_injector_target_rate", "iotex_injector_submit_latency_seconds",
            "iotex_injector_inclusion_latency_seconds"}
HISTOGRAMS = {"iotex_gateway_request_duration_seconds", "iotex_injector_submit_latency_seconds",
              "iotex_injector_inclusion_latency_seconds"}
KNOWN = NODE | GATEWAY | INJECTOR | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "sum", "count")}
EXPECTED = {"cluster-overview", "gateway", "injector"}
VARS = {"$namespace": ".*", "$__rate_interval": "5m"}

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    if not ok:
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))


def main(d):
    d = Path(d)
    files = {p.stem: p for p in sorted(d.glob("*.json"))}
    check("dashboards present: cluster overview, gateway, injector", EXPECTED <= set(files), sorted(files))
    rules = []
    for stem, path in files.items():
        dash = json.loads(path.read_text())
        check(f"{stem}: has a uid and a title", dash.get("uid") and dash.get("title"))
        names = {v["name"] for v in dash.get("templating", {}).get("list", [])}
        check(f"{stem}: defines the datasource and namespace variables", {"datasource", "namespace"} <= names, names)
        panels = dash.get("panels", [])
        check(f"{stem}: has panels", panels)
        for p in panels:
            pid = f"{stem} panel {p.get('id')} '{p.get('title')}'"
            exprs = [t.get("expr", "") for t in p.get("targets", [])]
            check(f"{pid}: has at least one query", exprs and all(e.strip() for e in exprs))
            for i, e in enumerate(exprs):
                q = e
                for var, val in VARS.items():
                    q = q.replace(var, val)
                check(f"{pid}: only known Grafana variables", "$" not in q, e)
                for m in set(re.findall(r"\biotex_[a-z0-9_]+", q)):
                    check(f"{pid}: metric {m} is exported by a node, the gateway or the injector", m in KNOWN, m)
                rules.append({"record": f"dashboard:{re.sub(r'[^a-z0-9]', '_', stem)}:panel{p.get('id')}_{i}",
                              "expr": q})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, fh)
    out = subprocess.run(["promtool", "check", "rules", fh.name], capture_output=True, text=True)
    check(f"promtool parses all {len(rules)} dashboard queries", out.returncode == 0 and rules,
          (out.stdout + out.stderr).strip())
    Path(fh.name).unlink()
    failed = results.count(False)
    print(f"dashboards ({len(rules)} queries): {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
