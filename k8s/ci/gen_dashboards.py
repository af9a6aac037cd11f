#!/usr/bin/env python3
"""Generates the Grafana dashboards k8s/iotex/files/dashboards/*.json (committed). Edit panels here, then run
    python3 k8s/ci/gen_dashboards.py k8s/iotex/files/dashboards
validate.sh regenerates them into a temp dir and fails if the committed files drifted."""
import json, sys
NS = 'namespace=~"$namespace"'
def sel(comp, extra=""):
    return "{" + f'component="{comp}",{NS}' + (f",{extra}" if extra else "") + "}"
def dashboard(uid, title, panels, desc):
    out = []
    for i, (ptitle, kind, targets, unit) in enumerate(panels):
        w = 8 if kind == "stat" else 12
        out.append({
            "id": i + 1, "type": kind, "title": ptitle,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 4 if kind == "stat" else 8, "w": w, "x": 0, "y": 0},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + j), "expr": e, "legendFormat": l,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}} for j, (e, l) in enumerate(targets)],
        })
    # lay panels out left to right, top to bottom
    x = y = rowh = 0
    for p in out:
        g = p["gridPos"]
        if x + g["w"] > 24:
            x, y, rowh = 0, y + rowh, 0
        g["x"], g["y"] = x, y
        x += g["w"]; rowh = max(rowh, g["h"])
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["iotex"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "namespace", "type": "query", "label": "Namespace", "multi": True, "includeAll": True,
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": 'label_values(up{component=~"node|gateway|injector"}, namespace)', "refId": "ns"},
             "refresh": 2},
        ]},
        "panels": out,
    }
H = lambda t: "iotex_heartbeat_status" + sel("node", 'status_type="' + t + '"')
cluster = dashboard("iotex-cluster-overview", "IoTeX cluster overview", [
    ("Nodes up", "stat", [(f'sum(up{sel("node")})', "up")], "none"),
    ("Nodes down", "stat", [(f'count(up{sel("node")} == 0) or vector(0)', "down")], "none"),
    ("Cluster tip (highest block)", "stat", [(f'max({H("blockchainHeight")})', "tip")], "none"),
    ("Block height per node", "timeseries", [(f'max by (pod) ({H("blockchainHeight")})', "{{pod}}")], "none"),
    ("Blocks per minute (tip)", "timeseries", [(f'max(deriv({H("blockchainHeight")}[5m])) * 60', "blocks/min")], "none"),
    ("Blocks behind the tip per node", "timeseries",
     [(f'scalar(max({H("blockchainHeight")})) - max by (pod) ({H("blockchainHeight")})', "{{pod}}")], "none"),
    ("Peers per node", "timeseries", [(f'max by (pod) ({H("numPeers")})', "{{pod}}")], "none"),
    ("Action pool fill per node", "timeseries",
     [(f'max by (pod) ({H("actpoolSize")}) / max by (pod) ({H("actpoolCapacity")})', "{{pod}}")], "percentunit"),
    ("Action pool rejections by type", "timeseries",
     [(f'sum by (type) (rate(iotex_actpool_rejection_metrics{sel("node")}[$__rate_interval]))', "{{type}}")], "ops"),
    ("web3 API calls by method", "timeseries",
     [(f'sum by (method) (rate(iotex_web3_api_metrics{sel("node")}[$__rate_interval]))', "{{method}}")], "reqps"),
    ("P2P messages per node", "timeseries",
     [(f'sum by (pod) (rate(iotex_p2p_message_counter{sel("node")}[$__rate_interval]))', "{{pod}}")], "ops"),
], "Node health, chain progress and action pools of the IoTeX cluster.")
ERR = 'outcome=~"no_upstream|upstream_error|timeout"'
G = lambda m, extra="": f"{m}{sel('gateway', extra)}"
gateway = dashboard("iotex-gateway", "IoTeX gateway", [
    ("Requests/s", "stat", [(f'sum(rate({G("iotex_gateway_requests_total")}[$__rate_interval]))', "req/s")], "reqps"),
    ("Cluster-side error ratio", "stat",
     [(f'sum(rate({G("iotex_gateway_requests_total", ERR)}[$__rate_interval])) / sum(rate({G("iotex_gateway_requests_total")}[$__rate_interval]))', "errors")], "percentunit"),
    ("Routable upstreams", "stat", [(f'count(max by (upstream) ({G("iotex_gateway_upstream_up")}) == 1) or vector(0)', "routable")], "none"),
    ("Requests by outcome", "timeseries",
     [(f'sum by (outcome) (rate({G("iotex_gateway_requests_total")}[$__rate_interval]))', "{{outcome}}")], "reqps"),
    ("Latency p50 / p99", "timeseries", [
        (f'histogram_quantile(0.5, sum by (le) (rate({G("iotex_gateway_request_duration_seconds_bucket")}[$__rate_interval])))', "p50"),
        (f'histogram_quantile(0.99, sum by (le) (rate({G("iotex_gateway_request_duration_seconds_bucket")}[$__rate_interval])))', "p99")], "s"),
    ("p99 latency by method", "timeseries",
     [(f'histogram_quantile(0.99, sum by (method, le) (rate({G("iotex_gateway_request_duration_seconds_bucket")}[$__rate_interval])))', "{{method}}")], "s"),
    ("Upstream routable (1) or not (0)", "timeseries",
     [(f'min by (upstream) ({G("iotex_gateway_upstream_up")})', "{{upstream}}")], "none"),
    ("Upstream lag (blocks behind the best head)", "timeseries",
     [(f'max by (upstream) ({G("iotex_gateway_upstream_lag_blocks")})', "{{upstream}}")], "none"),
    ("Best head vs upstream heads", "timeseries", [
        (f'max({G("iotex_gateway_best_head_block")})', "best"),
        (f'max by (upstream) ({G("iotex_gateway_upstream_head_block")})', "{{upstream}}")], "none"),
    ("Upstream requests by outcome", "timeseries",
     [(f'sum by (upstream, outcome) (rate({G("iotex_gateway_upstream_requests_total")}[$__rate_interval]))', "{{upstream}} {{outcome}}")], "reqps"),
    ("In-flight per upstream", "timeseries",
     [(f'sum by (upstream) ({G("iotex_gateway_upstream_in_flight")})', "{{upstream}}")], "none"),
    ("Rate-limited and retried", "timeseries", [
        (f'sum(rate({G("iotex_gateway_rate_limited_total")}[$__rate_interval]))', "rate limited"),
        (f'sum by (reason) (rate({G("iotex_gateway_retries_total")}[$__rate_interval]))', "retry {{reason}}")], "reqps"),
], "JSON-RPC traffic, latency and upstream health as the iotex-gateway sees them.")
I = lambda m, extra="": f"{m}{sel('injector', extra)}"
S = 'shard!=""'  # series of a sharded run's pods (PodMonitor relabeling)
injector = dashboard("iotex-injector", "IoTeX injector", [
    ("Offered (target) actions/s", "stat", [(f'sum({I("iotex_injector_target_rate")})', "target")], "ops"),
    ("Accepted actions/s", "stat", [(f'sum(rate({I("iotex_injector_accepted_total")}[$__rate_interval]))', "accepted")], "ops"),
    ("Achieved / offered", "stat",
     [(f'sum(rate({I("iotex_injector_accepted_total")}[$__rate_interval])) / sum({I("iotex_injector_target_rate")})', "ratio")], "percentunit"),
    ("Offered, scheduled, sent, accepted, included", "timeseries", [
        (f'sum({I("iotex_injector_target_rate")})', "offered"),
        (f'sum(rate({I("iotex_injector_scheduled_total")}[$__rate_interval]))', "scheduled"),
        (f'sum(rate({I("iotex_injector_sent_total")}[$__rate_interval]))', "sent"),
        (f'sum(rate({I("iotex_injector_accepted_total")}[$__rate_interval]))', "accepted"),
        (f'sum(rate({I("iotex_injector_included_total")}[$__rate_interval]))', "included")], "ops"),
    ("Rejections by kind", "timeseries",
     [(f'sum by (kind) (rate({I("iotex_injector_rejected_total")}[$__rate_interval]))', "{{kind}}")], "ops"),
    ("Late sends (schedule missed)", "timeseries",
     [(f'sum(rate({I("iotex_injector_late_total")}[$__rate_interval]))', "late")], "ops"),
    ("In flight", "timeseries", [(f'sum({I("iotex_injector_in_flight")})', "in flight")], "none"),
    ("Submit latency p50 / p99", "timeseries", [
        (f'histogram_quantile(0.5, sum by (le) (rate({I("iotex_injector_submit_latency_seconds_bucket")}[$__rate_interval])))', "p50"),
        (f'histogram_quantile(0.99, sum by (le) (rate({I("iotex_injector_submit_latency_seconds_bucket")}[$__rate_interval])))', "p99")], "s"),
    ("Inclusion latency p50 / p99", "timeseries", [
        (f'histogram_quantile(0.5, sum by (le) (rate({I("iotex_injector_inclusion_latency_seconds_bucket")}[$__rate_interval])))', "p50"),
        (f'histogram_quantile(0.99, sum by (le) (rate({I("iotex_injector_inclusion_latency_seconds_bucket")}[$__rate_interval])))', "p99")], "s"),
    # A sharded run (injector.shards > 1): the PodMonitor labels every shard's series with shard="<index>"
    # and shards="<N>"; these sum the shards live (the exact merged percentiles come from the merge Job).
    ("Sharded run: shards scraped", "stat", [(f'count({I("up", S)} == 1) or vector(0)', "shards up")], "none"),
    ("Sharded run: offered and accepted actions/s, all shards", "timeseries", [
        (f'sum({I("iotex_injector_target_rate", S)})', "offered (sum)"),
        (f'sum(rate({I("iotex_injector_accepted_total", S)}[$__rate_interval]))', "accepted (sum)"),
        (f'sum(rate({I("iotex_injector_included_total", S)}[$__rate_interval]))', "included (sum)")], "ops"),
    ("Sharded run: accepted actions/s per shard", "timeseries",
     [(f'sum by (shard) (rate({I("iotex_injector_accepted_total", S)}[$__rate_interval]))', "shard {{shard}}")], "ops"),
], "What the load injector offers, what the cluster accepts and includes, and how long it takes.")
d = sys.argv[1]
for name, dash in (("cluster-overview", cluster), ("gateway", gateway), ("injector", injector)):
    with open(f"{d}/{name}.json", "w") as f:
        json.dump(dash, f, indent=2); f.write("\n")
