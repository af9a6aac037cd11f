#!/usr/bin/env python3
"""Behavioural assertions over `helm template` output of the iotex chart, for every environment x size.

Each check is named for what it proves and fails if the chart broke it. Run by k8s/ci/validate.sh:
    assertions.py --helm k8s/.tools/bin/helm --chart k8s/iotex --readme k8s/README.md
Prints one line per failed check and `N passed, N failed` at the end; exits non-zero on any failure.
"""
import argparse
import functools
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devkeys  # noqa: E402  (same derivation as the chart's generateDevKeys)

ENVS = ["testing", "staging", "production"]
SIZES = [21, 101]
NS = "iotex-ci"
results: list[tuple[str, bool]] = []


def check(name: str, ok, detail="") -> None:
    results.append((name, bool(ok)))
    if not ok:
        print(f"FAIL {name}" + (f"\n     {detail}" if detail != "" else ""))


class Chart:
    def __init__(self, helm: str, chart: Path):
        self.helm, self.chart = helm, chart

    def run(self, env, size, *extra, release=None):
        # staging and production refuse to render without image repositories (values-ci-images.yaml sets them)
        images = [] if env == "testing" else ["-f", str(Path(__file__).resolve().parent / "values-ci-images.yaml")]
        args = [self.helm, "template", release or env, str(self.chart), "-n", NS,
                "-f", str(self.chart / f"values-{env}.yaml"), "-f", str(self.chart / f"values-{size}.yaml"), *images, *extra]
        return subprocess.run(args, capture_output=True, text=True)

    @functools.lru_cache(maxsize=None)
    def render(self, env, size, *extra, release=None):
        p = self.run(env, size, *extra, release=release)
        if p.returncode != 0:
            raise RuntimeError(f"helm template {env} {size} {extra} failed:\n{p.stderr}")
        return Render([d for d in yaml.safe_load_all(p.stdout) if d], release or env)


class Render:
    def __init__(self, docs, release):
        self.docs, self.release = docs, release

    def all(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind, name):
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        if len(found) != 1:
            raise KeyError(f"expected one {kind}/{name}, found {len(found)}")
        return found[0]

    def sts(self, role):
        return self.one("StatefulSet", f"{self.release}-{role}")

    def workloads(self):
        """(kind/name, pod spec, pod metadata) for every object that makes pods."""
        for d in self.docs:
            k, n = d["kind"], d["metadata"]["name"]
            if k in ("StatefulSet", "Deployment", "DaemonSet", "Job"):
                t = d["spec"]["template"]
                yield f"{k}/{n}", t["spec"], t["metadata"]
            elif k == "CronJob":
                t = d["spec"]["jobTemplate"]["spec"]["template"]
                yield f"{k}/{n}", t["spec"], t["metadata"]
            elif k == "Pod":
                yield f"{k}/{n}", d["spec"], d["metadata"]

    def node_config(self):
        data = self.one("ConfigMap", f"{self.release}-node-config")["data"]
        return yaml.safe_load(data["config.yaml"]), yaml.safe_load(data["genesis.yaml"]), data

    def gateway_toml(self):
        return tomllib.loads(self.one("ConfigMap", f"{self.release}-gateway-config")["data"]["gateway.toml"])


def containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_number(container, port):
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def dur(s: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", s)
    return int(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2]]


def checks_for(chart: Chart, env: str, size: int) -> None:
    tag = f"[{env}-{size}]"
    r = chart.render(env, size)
    rel = r.release
    boot, dele = r.sts("bootnode"), r.sts("delegate")

    # --- pod counts and delegate list
    replicas = boot["spec"]["replicas"] + dele["spec"]["replicas"]
    check(f"{tag} node pods (boot node + delegates) = {size}", replicas == size and boot["spec"]["replicas"] == 1,
          f"boot {boot['spec']['replicas']} + delegates {dele['spec']['replicas']}")
    config, genesis, cm = r.node_config()
    check(f"{tag} genesis numDelegates = numCandidateDelegates = {size}",
          genesis["blockchain"]["numDelegates"] == size == genesis["blockchain"]["numCandidateDelegates"])
    check(f"{tag} genesis lists {size} distinct delegates",
          len({d["operatorAddr"] for d in genesis["poll"]["delegates"]}) == size)

    # --- only the boot node has a PersistentVolumeClaim
    with_claims = [d["metadata"]["name"] for d in r.all("StatefulSet") if d["spec"].get("volumeClaimTemplates")]
    check(f"{tag} only the boot node StatefulSet has volumeClaimTemplates", with_claims == [boot["metadata"]["name"]],
          with_claims)
    check(f"{tag} no standalone PersistentVolumeClaim objects", not r.all("PersistentVolumeClaim"))
    claim = f"data-{rel}-bootnode-0"
    for name, spec, _ in r.workloads():
        pvcs = [v["persistentVolumeClaim"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v]
        if name.endswith("-backup"):
            check(f"{tag} backup job mounts only the boot node's claim, read-only",
                  pvcs == [{"claimName": claim, "readOnly": True}], pvcs)
        else:
            check(f"{tag} {name} mounts no PersistentVolumeClaim", not pvcs, pvcs)
    dvols = {v["name"]: v for v in dele["spec"]["template"]["spec"]["volumes"]}
    check(f"{tag} delegates keep /var/data in an emptyDir", "emptyDir" in dvols.get("data", {}), dvols.get("data"))
    # One value sizes the chain everywhere: a delegate restores a full copy of the boot node's volume, so an
    # emptyDir capped below it means an evict-and-restore loop once the chain outgrows the cap.
    storage = boot["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    iotex_c = next(c for c in dele["spec"]["template"]["spec"]["containers"] if c["name"] == "iotex")
    check(f"{tag} delegate emptyDir sizeLimit = boot node volume ({storage})",
          dvols["data"]["emptyDir"].get("sizeLimit") == storage, dvols["data"])
    check(f"{tag} delegates request that much ephemeral storage (the scheduler finds a machine with the disk)",
          iotex_c["resources"]["requests"].get("ephemeral-storage") == storage, iotex_c["resources"])
    check(f"{tag} the boot node's claim is kept on uninstall and on scale-down (backups scale it to 0)",
          boot["spec"].get("persistentVolumeClaimRetentionPolicy") == {"whenDeleted": "Retain", "whenScaled": "Retain"},
          boot["spec"].get("persistentVolumeClaimRetentionPolicy"))

    # --- restore init container on delegates only
    for name, spec, _ in r.workloads():
        inits = [c["name"] for c in spec.get("initContainers", [])]
        if name == f"StatefulSet/{rel}-delegate":
            restore = [c for c in spec.get("initContainers", []) if c["name"] == "restore"]
            check(f"{tag} delegates run the restore init container (restore.sh into /var/data)",
                  restore and restore[0]["command"][-1].endswith("restore.sh")
                  and {"name": "data", "mountPath": "/var/data"} in restore[0]["volumeMounts"], restore)
        else:
            check(f"{tag} {name} has no restore init container", "restore" not in inits, inits)

    # --- gateway upstreams are exactly the node pods
    headless = r.one("Service", f"{rel}-nodes")
    check(f"{tag} both StatefulSets use the headless Service for pod DNS",
          boot["spec"]["serviceName"] == dele["spec"]["serviceName"] == headless["metadata"]["name"]
          and headless["spec"]["clusterIP"] == "None")
    pods = [f"{boot['metadata']['name']}-0"] + [f"{dele['metadata']['name']}-{i}" for i in range(dele["spec"]["replicas"])]
    suffix = f".{headless['metadata']['name']}.{NS}.svc"
    web3 = port_number(boot["spec"]["template"]["spec"]["containers"][0], "web3")
    stats = port_number(boot["spec"]["template"]["spec"]["containers"][0], "stats")
    want_up = sorted(f"{p.removeprefix(rel + '-')}=http://{p}{suffix}:{web3}" for p in pods)
    want_health = sorted(f"{p.removeprefix(rel + '-')}=http://{p}{suffix}:{stats}/readiness" for p in pods)
    gw = r.gateway_toml()
    if "upstream-dns" in gw:
        check(f"{tag} gateway discovers the node pods from the headless Service (:{web3}, health :{stats})",
              gw["upstream-dns"] == [f"{headless['metadata']['name']}.{NS}.svc:{web3}"]
              and gw["upstream-dns-health-port"] == stats and "upstream" not in gw
              and headless["spec"].get("publishNotReadyAddresses") is True, gw)
    else:
        check(f"{tag} gateway upstreams are exactly the {size} node pods (stable DNS, :15014)",
              sorted(gw["upstream"]) == want_up and len(set(gw["upstream"])) == size,
              sorted(set(gw["upstream"]) ^ set(want_up))[:4])
        check(f"{tag} gateway upstream-health is each node pod's :8080/readiness",
              sorted(gw["upstream-health"]) == want_health)
    websocket = port_number(boot["spec"]["template"]["spec"]["containers"][0], "websocket")
    check(f"{tag} gateway subscribes on each node's WebSocket port (upstream-ws-port :16014)",
          gw.get("upstream-ws-port") == websocket, gw.get("upstream-ws-port"))
    grpc = port_number(boot["spec"]["template"]["spec"]["containers"][0], "grpc")
    check(f"{tag} gateway sends native gRPC calls to each node's gRPC port (upstream-grpc-port :14014)",
          gw.get("upstream-grpc-port") == grpc and gw.get("grpc-listen", "").endswith(":14014"),
          (gw.get("upstream-grpc-port"), gw.get("grpc-listen")))
    slow = {k: gw.get(k) for k in ("header-read-timeout", "body-read-timeout", "idle-timeout", "max-connections",
                                   "max-connections-per-client", "max-response-bytes", "max-buffered-response-bytes")}
    check(f"{tag} gateway.toml bounds slow clients and buffered answers (timeouts, connection caps, answer budget)",
          all(isinstance(slow[k], str) and slow[k] for k in ("header-read-timeout", "body-read-timeout", "idle-timeout"))
          and all(isinstance(slow[k], int) and slow[k] > 0 for k in ("max-connections", "max-connections-per-client",
                                                                      "max-response-bytes"))
          and isinstance(slow["max-buffered-response-bytes"], int)
          and slow["max-buffered-response-bytes"] >= 2 * slow["max-response-bytes"]
          and slow["max-connections-per-client"] <= slow["max-connections"], slow)
    check(f"{tag} headless Service selects both boot node and delegate pods",
          selects(headless["spec"]["selector"], boot["spec"]["template"]["metadata"]["labels"])
          and selects(headless["spec"]["selector"], dele["spec"]["template"]["metadata"]["labels"]))

    # --- Services
    dep = r.one("Deployment", f"{rel}-gateway")
    gw_labels = dep["spec"]["template"]["metadata"]["labels"]
    api = r.one("Service", "iotex")
    gw_ports = {p["name"]: p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    check(f"{tag} the iotex Service selects the gateway pods on 15014 (web3) and 14014 (gRPC, h2c), and no node pod",
          selects(api["spec"]["selector"], gw_labels)
          and not selects(api["spec"]["selector"], dele["spec"]["template"]["metadata"]["labels"])
          and [(p["port"], p["targetPort"]) for p in api["spec"]["ports"]] == [(15014, "rpc"), (14014, "grpc")]
          and api["spec"]["ports"][1].get("appProtocol") == "kubernetes.io/h2c"
          and gw_ports.get("grpc") == 14014, (api["spec"]["ports"], gw_ports))
    bsvc = r.one("Service", "bootnode")
    check(f"{tag} the bootnode Service selects only the boot node, P2P 4689",
          selects(bsvc["spec"]["selector"], boot["spec"]["template"]["metadata"]["labels"])
          and not selects(bsvc["spec"]["selector"], dele["spec"]["template"]["metadata"]["labels"])
          and [p["port"] for p in bsvc["spec"]["ports"]] == [4689])

    # --- node pods: probes, entrypoint bypassed, config
    for sts in (boot, dele):
        c = next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "iotex")
        lp, rp = c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]
        check(f"{tag} {sts['metadata']['name']} probes /liveness and /readiness on :8080",
              lp["path"] == "/liveness" and rp["path"] == "/readiness"
              and port_number(c, lp["port"]) == 8080 == port_number(c, rp["port"]))
        check(f"{tag} {sts['metadata']['name']} bypasses the image entrypoint (command set, start.sh execs iotex-server)",
              c.get("command") == ["/bin/sh", "/etc/iotex/start.sh"]
              and re.search(r"^exec iotex-server -config-path=\S+ -genesis-path=\S+ -plugin=gateway$", cm["start.sh"], re.M))
        check(f"{tag} {sts['metadata']['name']} runs as uid 65534",
              sts["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65534)
        ann = sts["spec"]["template"]["metadata"]["annotations"]
        check(f"{tag} {sts['metadata']['name']} pods carry checksum/config", re.fullmatch(r"[0-9a-f]{64}", ann.get("checksum/config", "")))
    check(f"{tag} config.yaml keeps data and systemLogDB under /var/data, logs to stdout",
          config["system"]["systemLogDBPath"].startswith("/var/data/")
          and all(v.startswith("/var/data/") for k, v in config["chain"].items() if k.endswith("DBPath"))
          and "stderrRedirectFile" not in json.dumps(config) and config["log"]["zap"]["outputPaths"] == ["stdout"])
    check(f"{tag} producer key reaches config.yaml only as ${{IOTEX_PRODUCER_PRIVKEY}}",
          config["chain"]["producerPrivKey"] == "${IOTEX_PRODUCER_PRIVKEY}")
    keys_vol = next(v for v in boot["spec"]["template"]["spec"]["volumes"] if v["name"] == "keys")
    check(f"{tag} producer keys are mounted from a Secret", "secret" in keys_vol)
    secrets = {s["metadata"]["name"]: s for s in r.all("Secret")}
    secret_values = [v for s in secrets.values() for v in (s.get("stringData") or {}).values() if len(v) >= 32]
    cm_text = json.dumps([c.get("data") for c in r.all("ConfigMap")])
    check(f"{tag} no Secret value appears in any ConfigMap", not any(v in cm_text for v in secret_values))
    if env == "testing":
        ks = secrets[keys_vol["secret"]["secretName"]]["stringData"]
        by_name = {d["name"]: d["operatorAddr"] for d in chart_values(chart, size)["genesis"]["delegates"]}
        pod_keys = [p.removeprefix(rel + "-") for p in pods]
        check(f"{tag} dev Secret has one producer key per node pod", sorted(k for k in ks if k != "bootnode-master-key") == sorted(pod_keys))
        mismatched = [k for k in pod_keys if devkeys.address(ks[k]) != by_name.get(k)]
        check(f"{tag} each pod's dev producer key is the genesis delegate of the same name", not mismatched, mismatched[:3])
        gaddrs = [d["operatorAddr"] for d in genesis["poll"]["delegates"]]
        check(f"{tag} genesis.yaml delegates are in pod order (bootnode-0 first)",
              gaddrs == [by_name[k] for k in pod_keys])
    else:
        check(f"{tag} {env} renders no producer-key Secret (uses keys.existingSecret)",
              keys_vol["secret"]["secretName"] not in secrets)

    # --- gateway
    g = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "iotex-gateway")
    check(f"{tag} gateway readiness on /readyz, liveness on /healthz (admin port)",
          g["readinessProbe"]["httpGet"]["path"] == "/readyz" and g["livenessProbe"]["httpGet"]["path"] == "/healthz"
          and port_number(g, g["readinessProbe"]["httpGet"]["port"]) == int(gw["admin-listen"].rsplit(":", 1)[1]))
    check(f"{tag} gateway runs /usr/local/bin/iotex-gateway --config <gateway.toml>",
          g["command"] == ["/usr/local/bin/iotex-gateway"] and g["args"] == ["--config", "/etc/iotex-gateway/gateway.toml"])
    tgp = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    check(f"{tag} gateway termination grace ({tgp}s) exceeds shutdown-delay + shutdown-grace",
          tgp > dur(gw["shutdown-delay"]) + dur(gw["shutdown-grace"]))
    gpdb = r.one("PodDisruptionBudget", f"{rel}-gateway")
    check(f"{tag} gateway PDB (policy/v1) selects the gateway pods",
          gpdb["apiVersion"] == "policy/v1" and selects(gpdb["spec"]["selector"]["matchLabels"], gw_labels))
    npdb = r.one("PodDisruptionBudget", f"{rel}-nodes")
    check(f"{tag} node PDB (policy/v1) covers boot node and delegates",
          npdb["apiVersion"] == "policy/v1"
          and selects(npdb["spec"]["selector"]["matchLabels"], dele["spec"]["template"]["metadata"]["labels"])
          and selects(npdb["spec"]["selector"]["matchLabels"], boot["spec"]["template"]["metadata"]["labels"]))
    hpa = r.all("HorizontalPodAutoscaler")
    if env == "production":
        check(f"{tag} production autoscales the gateway (HPA on the Deployment, no fixed replicas)",
              len(hpa) == 1 and hpa[0]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
              and "replicas" not in dep["spec"])
    else:
        check(f"{tag} no HPA unless enabled; fixed gateway replicas", not hpa and dep["spec"]["replicas"] >= 2)

    # --- hardening
    for name, spec, meta in r.workloads():
        psc = spec.get("securityContext", {})
        if "fluentd" in name:
            check(f"{tag} {name} (root to read host logs) drops every capability, read-only root",
                  all(c["securityContext"]["capabilities"]["drop"] == ["ALL"] and c["securityContext"]["readOnlyRootFilesystem"]
                      and c["securityContext"]["allowPrivilegeEscalation"] is False for c in containers(spec)))
            continue
        check(f"{tag} {name} pod runs as non-root with RuntimeDefault seccomp",
              psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0
              and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
        bad = [c["name"] for c in containers(spec)
               if not (c.get("securityContext", {}).get("readOnlyRootFilesystem") is True
                       and c["securityContext"].get("allowPrivilegeEscalation") is False
                       and c["securityContext"].get("capabilities", {}).get("drop") == ["ALL"])]
        check(f"{tag} {name} containers: read-only root, no privilege escalation, all capabilities dropped", not bad, bad)
        nores = [c["name"] for c in containers(spec) if not c.get("resources", {}).get("requests")]
        check(f"{tag} {name} containers all request resources", not nores, nores)
    for sts_or_dep in (boot, dele, dep):
        tsc = sts_or_dep["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        check(f"{tag} {sts_or_dep['metadata']['name']} spreads over machines and zones",
              {t["topologyKey"] for t in tsc} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"})

    # --- NetworkPolicies
    np = r.one("NetworkPolicy", f"{rel}-nodes")
    node_labels = dele["spec"]["template"]["metadata"]["labels"]
    rules = {tuple(sorted(p["port"] for p in rule["ports"])): rule["from"] for rule in np["spec"]["ingress"]}
    check(f"{tag} NetworkPolicy: node P2P (4689) only from node pods",
          list(rules.get((4689,), [])) and all(selects(f.get("podSelector", {}).get("matchLabels"), node_labels)
                                              for f in rules[(4689,)]))
    rpc_from = rules.get((14014, 15014, 16014), [])
    rpc_clients = [meta["labels"] for name, _, meta in r.workloads()
                   if any(s in name for s in ("gateway", "injector", "test-rpc"))]
    check(f"{tag} NetworkPolicy: node JSON-RPC only from pods labelled as RPC clients (gateway, injector, tests)",
          len(rpc_from) == 1 and all(selects(rpc_from[0]["podSelector"]["matchLabels"], l) for l in rpc_clients)
          and not selects(rpc_from[0]["podSelector"]["matchLabels"], node_labels))
    check(f"{tag} NetworkPolicy: node :8080 from the gateway and the monitoring namespace",
          any("namespaceSelector" in f and f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "monitoring"
              for f in rules.get((8080,), []))
          and any(selects(f.get("podSelector", {}).get("matchLabels"), gw_labels) for f in rules.get((8080,), [])))

    # --- backup
    cj = r.one("CronJob", f"{rel}-backup")
    jspec = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    check(f"{tag} backup CronJob: concurrencyPolicy Forbid", cj["spec"]["concurrencyPolicy"] == "Forbid")
    steps = [(c["name"], c["command"][-1]) for c in containers(jspec)]
    check(f"{tag} backup takes the Lease, stops the boot node, backs up, then restarts it",
          steps == [("acquire-lease", "acquire"), ("stop-bootnode", "stop"), ("backup", "/scripts/backup.sh"),
                    ("start-bootnode", "start")], steps)
    lease = next((l for l in r.all("Lease") if l["metadata"]["name"] == f"{rel}-backup"), {"metadata": {"name": None}})
    check(f"{tag} the backup Lease exists, named in every scale container's env",
          all({"name": "LEASE", "value": lease["metadata"]["name"]} in c["env"] for c in containers(jspec) if c["name"] != "backup"))
    guard = next((c for c in r.all("CronJob") if c["metadata"]["name"] == f"{rel}-backup-guard"), None)
    gspec = guard["spec"]["jobTemplate"]["spec"]["template"]["spec"] if guard else {"containers": []}
    check(f"{tag} backup-guard CronJob runs `bootnode-scale.sh guard` with no affinity (schedules while the boot node is down)",
          [c["command"][-1] for c in gspec["containers"]] == ["guard"] and "affinity" not in gspec
          and gspec.get("serviceAccountName") == jspec["serviceAccountName"] and guard["spec"]["concurrencyPolicy"] == "Forbid")
    # S3 takes at most 10,000 parts: the streamed upload's chunk must let a full boot-node volume through.
    benv = {e["name"]: e.get("value") for e in next(c for c in containers(jspec) if c["name"] == "backup")["env"]}
    mib = lambda q: int(q[:-2]) * {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}[q[-2:]]
    chunk = benv.get("RCLONE_S3_CHUNK_SIZE")
    check(f"{tag} backup upload chunk ({chunk}) x 10,000 parts holds the whole boot node volume ({storage})",
          chunk is not None and mib(chunk) * 10000 >= mib(storage) * 1.05, benv)
    aff = jspec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    check(f"{tag} backup pod is pinned to the boot node's machine (required pod affinity)",
          selects(aff["labelSelector"]["matchLabels"], boot["spec"]["template"]["metadata"]["labels"])
          and aff["topologyKey"] == "kubernetes.io/hostname")
    role = r.one("Role", f"{rel}-backup")
    check(f"{tag} backup Role may only scale the boot node StatefulSet, hold its Lease and read pods",
          all(rule.get("resourceNames") == [boot["metadata"]["name"]] for rule in role["rules"] if "apps" in rule["apiGroups"])
          and all(rule.get("resourceNames") == [lease["metadata"]["name"]] for rule in role["rules"] if "coordination.k8s.io" in rule["apiGroups"])
          and all(rule.get("resourceNames") or rule["verbs"] == ["get"] for rule in role["rules"])
          and not any(v in ("delete", "create", "*") for rule in role["rules"] for v in rule["verbs"]))
    scripts = r.one("ConfigMap", f"{rel}-backup-scripts")["data"]
    files = chart.chart / "files" / "scripts"
    check(f"{tag} backup scripts ConfigMap carries files/scripts verbatim",
          all(scripts[n] == (files / n).read_text() for n in ("backup.sh", "restore.sh", "bootnode-scale.sh")))

    # --- monitoring
    sms = r.all("ServiceMonitor")
    check(f"{tag} ServiceMonitors for nodes, gateway and injector, labelled release: kube-prometheus-stack",
          sorted(s["metadata"]["name"] for s in sms) == sorted(f"{rel}-{n}" for n in ("nodes", "gateway", "injector"))
          and all(s["metadata"]["labels"].get("release") == "kube-prometheus-stack" for s in sms))
    services = r.all("Service")
    for sm in sms:
        if sm["metadata"]["name"].endswith("injector") and not [j for j in r.all("Job") if "injector" in j["metadata"]["name"]] and not [c for c in r.all("CronJob") if "injector" in c["metadata"]["name"]]:
            continue
        port = sm["spec"]["endpoints"][0]["port"]
        target = [s for s in services if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        check(f"{tag} {sm['metadata']['name']} selects exactly one Service that has its port '{port}'",
              len(target) == 1 and port in [p["name"] for p in target[0]["spec"]["ports"]],
              [t["metadata"]["name"] for t in target])
    node_sm = r.one("ServiceMonitor", f"{rel}-nodes")
    check(f"{tag} node ServiceMonitor scrapes :8080/metrics",
          node_sm["spec"]["endpoints"][0]["path"] == "/metrics"
          and next(p["port"] for p in headless["spec"]["ports"] if p["name"] == node_sm["spec"]["endpoints"][0]["port"]) == 8080)
    pr = r.one("PrometheusRule", f"{rel}-alerts")
    check(f"{tag} PrometheusRule is files/prometheus/iotex-rules.yaml (what promtool tested)",
          pr["spec"] == yaml.safe_load((chart.chart / "files/prometheus/iotex-rules.yaml").read_text())
          and pr["metadata"]["labels"].get("release") == "kube-prometheus-stack")
    alerts = {rule["alert"] for g_ in pr["spec"]["groups"] for rule in g_["rules"]}
    check(f"{tag} PrometheusRule has the required alerts",
          {"IotexNodeDown", "IotexNodeHeightNotGrowing", "IotexNodeLagging", "IotexGatewayNoHealthyUpstream",
           "IotexGatewayErrorRate", "IotexGatewayHighLatencyP99", "IotexInjectorUnderDelivering"} <= alerts, alerts)
    dashboards = [c for c in r.all("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    check(f"{tag} three Grafana dashboard ConfigMaps for the sidecar (cluster overview, gateway, injector)",
          sorted(k for c in dashboards for k in c["data"]) == ["iotex-cluster-overview.json", "iotex-gateway.json", "iotex-injector.json"])
    check(f"{tag} dashboard ConfigMaps hold the files verbatim",
          all(json.loads(v) == json.loads((chart.chart / "files/dashboards" / k.removeprefix("iotex-")).read_text())
              for c in dashboards for k, v in c["data"].items()))

    # --- logging, injector, tests
    ds = r.all("DaemonSet")
    check(f"{tag} no Curator (gone from its registry, refuses Elasticsearch 8)",
          not [c for c in r.all("CronJob") if "curator" in c["metadata"]["name"]])
    if env == "testing":
        check(f"{tag} logging off in testing: no Fluentd", not ds)
    else:
        lns = "iotex-logging"
        cm = next((c for c in r.all("ConfigMap") if c["metadata"]["name"].endswith("-fluentd")), {"metadata": {}, "data": {}})
        fl = cm["data"].get("fluent.conf", "")
        check(f"{tag} Fluentd DaemonSet ships to Elasticsearch from its own namespace, not the release's (restricted)",
              len(ds) == 1 and "@type elasticsearch" in fl and ds[0]["metadata"].get("namespace") == lns
              and cm["metadata"].get("namespace") == lns)
        denv = {e["name"]: e for e in ds[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
        check(f"{tag} Fluentd tails only the release namespace's log files (staging and production never mix)",
              '"/var/log/containers/*_#{ENV[\'SOURCE_NAMESPACE\']}_*.log"' in fl and denv.get("SOURCE_NAMESPACE", {}).get("value") == NS
              and "/var/log/containers/*.log" not in fl)
        check(f"{tag} Fluentd sends Elasticsearch 8 credentials (from a Secret) and verifies its CA",
              denv.get("ELASTICSEARCH_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef") == {"name": "iotex-elasticsearch", "key": "password"}
              and "ca_file /etc/fluentd-es-ca/ca.crt" in cm["data"].get("output-auth.conf", "")
              and "ssl_verify true" in cm["data"].get("output-auth.conf", "") and "@include output-auth.conf" in fl)
        m = re.search(r"<filter kubernetes\.var\.log\.containers\.\*_([a-z0-9-]+)-\*\.log>\s*\n\s*@type parser(.*?)</filter>", fl, re.S)
        check(f"{tag} Fluentd parses the gateway container's log lines as JSON",
              m and m[1] == g["name"] and "@type json" in m[2])
        ilm = [j for j in r.all("Job") if j["metadata"]["name"] == f"{rel}-{NS}-ilm"]
        ienv = {e["name"]: e.get("value") for e in ilm[0]["spec"]["template"]["spec"]["containers"][0]["env"]} if ilm else {}
        want_days = {"staging": "7", "production": "30"}[env]
        check(f"{tag} an ILM policy (hook Job on install and upgrade) deletes indices after {want_days} days",
              len(ilm) == 1 and ilm[0]["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
              and ienv.get("RETENTION_DAYS") == want_days and ienv.get("PREFIX") == NS
              and "_ilm/policy/" in ilm[0]["spec"]["template"]["spec"]["containers"][0]["args"][0], ienv)
    check(f"{tag} no injector Job by default", not [j for j in r.all("Job") if "injector" in j["metadata"]["name"]])
    soak = [c for c in r.all("CronJob") if c["metadata"]["name"] == f"{rel}-injector-soak"]
    check(f"{tag} injector soak CronJob only in staging, never overlapping",
          (len(soak) == 1 and soak[0]["spec"]["concurrencyPolicy"] == "Forbid") if env == "staging" else not soak)
    tests = [p for p in r.all("Pod") if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    check(f"{tag} helm test pod calls the iotex Service",
          len(tests) == 1 and f"http://iotex.{NS}.svc:15014" in tests[0]["spec"]["containers"][0]["args"][0])


@functools.lru_cache(maxsize=None)
def chart_values(chart: Chart, size: int):
    return yaml.safe_load((chart.chart / f"values-{size}.yaml").read_text())


def cross_checks(chart: Chart, readme: Path) -> None:
    # checksum/config follows the genesis (and only changes when config changes)
    base = chart.render("testing", 21)
    same = chart.render("testing", 21, "--set", "nodes.logLevel=info")
    moved = chart.render("testing", 21, "--set", "genesis.timestamp=1767225601")
    ann = lambda r, role: r.sts(role)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    for role in ("bootnode", "delegate"):
        check(f"changing the genesis changes checksum/config on the {role} pods", ann(base, role) != ann(moved, role))
        check(f"an unchanged config keeps checksum/config on the {role} pods", ann(base, role) == ann(same, role))
    gw_ann = lambda r: (r.one("Deployment", "testing-gateway")["spec"]["template"]["metadata"].get("annotations") or {}).get("checksum/config")
    check("with hot reload (default) a gateway setting change rolls no pod: no checksum/config on the gateway",
          gw_ann(base) is None and gw_ann(chart.render("testing", 21, "--set", "gateway.config.max-lag-blocks=3")) is None)
    cold = lambda *a: chart.render("testing", 21, "--set", "gateway.hotReload=false", *a)
    check("without hot reload, changing a gateway setting changes the gateway's checksum/config",
          gw_ann(cold()) is not None and gw_ann(cold()) != gw_ann(cold("--set", "gateway.config.max-lag-blocks=3")))
    fixed = chart.render("testing", 21, "--set", "gateway.discovery.enabled=false").gateway_toml()
    check("discovery off: gateway.toml lists every node pod as upstream (with health URLs), no upstream-dns",
          len(fixed.get("upstream", [])) == 21 and len(fixed.get("upstream-health", [])) == 21 and "upstream-dns" not in fixed)

    # access tokens: keys and tiers reach gateway.toml, the revocation list is its own ConfigMap (outside the
    # checksum, so revoking restarts nothing) mounted where token-revocation-list points
    pk = "A" * 43
    tok = chart.render("testing", 21, "--set-json", f'gateway.config.token-public-key=["{pk}"]',
                       "--set-json", 'gateway.config.token-tier=["gold=100/200"]',
                       "--set", "gateway.config.require-token=true", "--set-json", 'gateway.revokedTokens=["leaked-1"]')
    toml = tok.gateway_toml()
    revoked = tok.one("ConfigMap", "testing-gateway-revoked")["data"]["revoked.txt"]
    dep = tok.one("Deployment", "testing-gateway")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in dep["containers"][0]["volumeMounts"]}
    init_mounts = {m["name"]: m["mountPath"] for m in dep["initContainers"][0]["volumeMounts"]}
    check("token settings reach gateway.toml and token-revocation-list points at the mounted revocation ConfigMap",
          toml.get("token-public-key") == [pk] and toml.get("token-tier") == ["gold=100/200"] and toml.get("require-token") is True
          and toml.get("token-revocation-list") == "/etc/iotex-gateway-revocation/revoked.txt"
          and "leaked-1" in revoked.split("\n")
          and mounts.get("revoked") == init_mounts.get("revoked") == "/etc/iotex-gateway-revocation"
          and any(v["name"] == "revoked" and v["configMap"]["name"] == "testing-gateway-revoked" for v in dep["volumes"]),
          (toml, revoked, mounts))
    check("without a token key gateway.toml names no revocation list (the gateway would refuse it)",
          "token-revocation-list" not in base.gateway_toml())
    check("revoking a token does not change the gateway's checksum/config (no restart; the gateway re-reads it)",
          gw_ann(base) == gw_ann(chart.render("testing", 21, "--set-json", 'gateway.revokedTokens=["x"]')))

    # images nobody publishes: outside testing, an unset repository fails the render with what to set
    for env in ("staging", "production"):
        p = subprocess.run([chart.helm, "template", env, str(chart.chart), "-n", NS, "-f", str(chart.chart / f"values-{env}.yaml"),
                            "-f", str(chart.chart / "values-21.yaml")], capture_output=True, text=True)
        check(f"{env} without images.gateway/injector.repository fails at render time, naming the value and build-images.sh",
              p.returncode != 0 and ".repository is not set" in p.stderr and "scripts/build-images.sh" in p.stderr, p.stderr[:300])
    img = chart.render("testing", 21).one("Deployment", "testing-gateway")["spec"]["template"]["spec"]["containers"][0]["image"]
    check("testing runs the image names build-images.sh gives by default", img == "iotex-toolkit/iotex-gateway:0.1.0", img)

    # the injector Job is named after its run: an upgrade that leaves the run alone leaves the Job alone
    jname = lambda *a: [j["metadata"]["name"] for j in chart.render("testing", 21, "--set", "injector.job.enabled=true", *a).all("Job")]
    same, other = jname("--set", "gateway.config.max-lag-blocks=3"), jname("--set", "injector.run.rate=250")
    check("the injector Job's name does not change with unrelated values (no rerun on upgrade or rollback)",
          same == jname() and len(same) == 1 and same[0].startswith("testing-injector-"), (same, jname()))
    check("a changed load run gets a new injector Job (a Job's pod cannot change)", other != same and len(other) == 1, other)
    check("a finished injector Job is kept (no TTL): a deleted one would be recreated, and rerun, by the next upgrade",
          "ttlSecondsAfterFinished" not in chart.render("testing", 21, "--set", "injector.job.enabled=true").all("Job")[0]["spec"])

    shard_checks(chart)

    # the boot node's claim goes with the release only when the values ask for it
    pol = chart.render("testing", 21, "--set", "bootnode.storage.deleteOnUninstall=true").sts("bootnode")["spec"]
    check("bootnode.storage.deleteOnUninstall=true deletes the claim with the release (and still keeps it on scale-down)",
          pol.get("persistentVolumeClaimRetentionPolicy") == {"whenDeleted": "Delete", "whenScaled": "Retain"})

    # backup chunk: sized from the volume; an explicit one too small for it, or buffers over the memory limit, refused
    p = chart.run("production", 21, "--set", "backup.s3.chunkSize=5Mi")
    check("a backup chunk too small for the boot node volume is refused (10,000 parts)",
          p.returncode != 0 and "10,000 parts" in p.stderr, p.stderr[:300])
    p = chart.run("production", 21, "--set", "backup.s3.uploadConcurrency=32")
    check("backup buffers (chunk x concurrency) over the memory limit are refused",
          p.returncode != 0 and "backup.resources.limits.memory" in p.stderr, p.stderr[:300])

    # per-size resources
    res = lambda r: r.sts("delegate")["spec"]["template"]["spec"]["containers"][0]["resources"]
    check("resources follow the size profile (21 and 101 differ, both set)",
          res(chart.render("staging", 21)) != res(chart.render("staging", 101)) and res(chart.render("staging", 101))["requests"])

    # the schema and the chart refuse bad input
    for what, extra, needle in [
        ("a bad environment", ["--set", "environment=prod"], "environment"),
        ("a bad size", ["--set", "size=22"], "size"),
        ("a size given as text", ["--set-string", "size=21"], "size"),
        ("an unknown top-level key", ["--set", "sise=21"], "sise"),
        ("a malformed gateway duration", ["--set", "gateway.config.shutdown-grace=20 seconds"], "shutdown-grace"),
    ]:
        p = chart.run("testing", 21, *extra)
        check(f"the values schema rejects {what}", p.returncode != 0 and "schema" in p.stderr and needle in p.stderr,
              p.stderr.strip()[:300])
    p = subprocess.run([chart.helm, "template", "x", str(chart.chart), "-f", str(chart.chart / "values-testing.yaml")],
                       capture_output=True, text=True)
    check("installing without a size file is refused", p.returncode != 0 and "size" in p.stderr, p.stderr[:300])
    p = chart.run("staging", 21, "--set", "keys.generateDevKeys=true")
    check("public dev keys are refused outside testing", p.returncode != 0 and "testing only" in p.stderr, p.stderr[:300])
    p = chart.run("testing", 21, "-f", str(chart.chart / "values-101.yaml"), "--set", "size=21")
    check("a delegate list that does not match the size is refused", p.returncode != 0 and "genesis.delegates has 101" in p.stderr,
          p.stderr[:300])
    p = chart.run("testing", 21, "--set", "gateway.terminationGracePeriodSeconds=25")
    check("a gateway termination grace shorter than its drain is refused", p.returncode != 0 and "must exceed" in p.stderr,
          p.stderr[:300])

    # the injector Job, when switched on, targets the iotex Service with rate/duration/keys from values
    r = chart.render("testing", 21, "--set", "injector.job.enabled=true", "--set", "injector.run.rate=250",
                     "--set", "injector.run.duration=10m")
    jobs = r.all("Job")
    args = jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"] if jobs else []
    envs = jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"] if jobs else []
    check("injector Job (when enabled) runs against the iotex Service with rate and duration from values",
          len(jobs) == 1 and args[0] == "run" and f"--endpoint=http://iotex.{NS}.svc:15014" in args
          and "--rate=250" in args and "--duration=10m" in args and "--metrics-listen=0.0.0.0:9464" in args)
    stepped = chart.render("testing", 21, "--set", "injector.job.enabled=true",
                           "--set-string", "injector.run.steps=100@30s\\,200@1m")
    sargs = stepped.all("Job")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    check("a stepped injector profile passes --steps instead of --rate/--duration (the injector refuses both)",
          "--steps=100@30s,200@1m" in sargs and not any(a.startswith(("--rate=", "--duration=")) for a in sargs), sargs)
    check("injector keys come from a Secret, never from args",
          any(e["name"] == "IOTEX_INJECTOR_MNEMONIC" and "secretKeyRef" in e["valueFrom"] for e in envs)
          and not any("test test" in a for a in args))
    sm = r.one("ServiceMonitor", "testing-injector")
    svc = [s for s in r.all("Service") if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    check("injector ServiceMonitor finds the injector metrics Service (port metrics)",
          len(svc) == 1 and selects(svc[0]["spec"]["selector"], jobs[0]["spec"]["template"]["metadata"]["labels"]))

    # NOTES.txt renders for every combination (helm template skips it; render it through tpl in a copy)
    import shutil, tempfile
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "iotex"
        shutil.copytree(chart.chart, copy)
        shutil.copy(copy / "templates/NOTES.txt", copy / "files/NOTES.txt")
        (copy / "templates/notes-check.yaml").write_text(
            'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |\n'
            '    {{- tpl (.Files.Get "files/NOTES.txt") . | nindent 4 }}\n')
        notes_chart = Chart(chart.helm, copy)
        for env in ENVS:
            for size in SIZES:
                p = notes_chart.run(env, size, "--show-only", "templates/notes-check.yaml")
                notes = yaml.safe_load(p.stdout)["data"]["notes"] if p.returncode == 0 else ""
                check(f"[{env}-{size}] NOTES.txt renders and names the iotex Service and the {size - 1} delegates",
                      f"http://iotex.{NS}.svc:15014" in notes and f"({size - 1} pods" in notes, p.stderr[:300] or notes[:300])

    # images: the Dockerfiles build what the chart runs, multi-stage, non-root
    repo = chart.chart.resolve().parent.parent
    for b in ("gateway", "injector"):
        df = (repo / b / "Dockerfile").read_text() if (repo / b / "Dockerfile").is_file() else ""
        froms = re.findall(r"^FROM\s+(\S+)", df, re.M)
        user = re.findall(r"^USER\s+(\S+)", df, re.M)
        check(f"{b}/Dockerfile is multi-stage with a distroless final image",
              len(froms) >= 2 and "distroless" in froms[-1], froms)
        check(f"{b}/Dockerfile's final image runs as a non-root user",
              user and user[-1].split(":")[0] not in ("0", "root"), user)
        check(f"{b}/Dockerfile installs /usr/local/bin/iotex-{b}, the path the chart runs",
              re.search(rf"^COPY --from=\S+ \S+ /usr/local/bin/iotex-{b}$", df, re.M)
              and re.search(rf"cargo build --release --locked -p iotex-{b}\b", df))
    # README: one install command per environment x size, naming values files that exist
    text = readme.read_text()
    cmds = re.findall(r"^helm install (\S+) k8s/iotex .*?-f k8s/iotex/(values-[a-z]+\.yaml) -f k8s/iotex/(values-\d+\.yaml)", text, re.M)
    combos = {(a[len("values-"):-5], b[len("values-"):-5]) for _, a, b in cmds}
    check("README has one helm install command per environment x size",
          combos == {(e, str(s)) for e in ENVS for s in SIZES} and len(cmds) == 6, sorted(combos))
    check("README install commands name values files that exist",
          all((chart.chart / f).is_file() for _, a, b in cmds for f in (a, b)))


def shard_checks(chart: Chart) -> None:
    """injector.shards: the Indexed Job, its index wiring, the S3 upload, the merge Job and its monitoring."""
    on = ("--set", "injector.job.enabled=true")
    r = chart.render("testing", 21, *on, "--set", "injector.shards=4", "--set", "injector.run.rate=400")
    jobs = {j["metadata"]["name"]: j for j in r.all("Job") if "injector" in j["metadata"]["name"]}
    shard_jobs = [j for j in jobs.values() if j["spec"].get("completionMode") == "Indexed"]
    check("injector.shards=4: one Indexed Job with completions = parallelism = 4, plus its merge Job",
          len(shard_jobs) == 1 and shard_jobs[0]["spec"]["completions"] == 4 and shard_jobs[0]["spec"]["parallelism"] == 4
          and set(jobs) == {shard_jobs[0]["metadata"]["name"], shard_jobs[0]["metadata"]["name"] + "-merge"}, sorted(jobs))
    if not shard_jobs:
        return
    sj = shard_jobs[0]
    name = sj["metadata"]["name"]
    spec = sj["spec"]["template"]["spec"]
    inj = next((c for c in spec.get("initContainers", []) if c["name"] == "iotex-injector"), None)
    up = next((c for c in spec.get("containers", []) if c["name"] == "upload"), None)
    check("a shard pod runs the injector first (init container), then the upload container",
          inj is not None and up is not None and [c["name"] for c in spec["containers"]] == ["upload"], spec.keys())
    if inj is None or up is None:
        return
    env = {e["name"]: e for e in inj["env"]}
    field = lambda e: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    check("the completion index becomes --shard=<index>/4 (from the pod's job-completion-index annotation)",
          "--shard=$(IOTEX_INJECTOR_SHARD_INDEX)/4" in inj["args"]
          and field(env.get("IOTEX_INJECTOR_SHARD_INDEX", {})) == "metadata.annotations['batch.kubernetes.io/job-completion-index']",
          (inj["args"], env.get("IOTEX_INJECTOR_SHARD_INDEX")))
    check("every shard gets the run's total --rate (the injector takes 1/N) and writes report and histogram log",
          "--rate=400" in inj["args"] and "--report=/reports/report.json" in inj["args"]
          and "--histogram-log=/reports/histogram.hlog" in inj["args"], inj["args"])
    check("all shards share one run id: IOTEX_INJECTOR_RUN_ID is the Job's name (label job-name)",
          field(env.get("IOTEX_INJECTOR_RUN_ID", {})) == "metadata.labels['job-name']", env.get("IOTEX_INJECTOR_RUN_ID"))
    uenv = {e["name"]: e for e in up["env"]}
    backup = next(c for c in containers(r.one("CronJob", "testing-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"])
                  if c["name"] == "backup")
    s3 = lambda c: {e["name"]: e for e in c["env"] if e["name"].startswith(("RCLONE_CONFIG", "S3_REMOTE"))}
    check("each shard uploads with the backup's S3 bucket, endpoint and credentials Secret (same env as the backup)",
          s3(up) == s3(backup) and up["command"][-1] == "upload-shard" and up["image"] == backup["image"], (s3(up), s3(backup)))
    check("the upload reads the index and run id the injector used",
          uenv.get("SHARD_INDEX", {}).get("value") == "$(IOTEX_INJECTOR_SHARD_INDEX)"
          and uenv.get("RUN_ID", {}).get("value") == "$(IOTEX_INJECTOR_RUN_ID)" and field(uenv["IOTEX_INJECTOR_RUN_ID"]) == field(env["IOTEX_INJECTOR_RUN_ID"])
          and {"name": "reports", "mountPath": "/reports", "readOnly": True} in up["volumeMounts"], uenv)
    check("shard pods carry the injector's labels (RPC client, NetworkPolicy, selectors) and iotex.io/injector-shards",
          selects(r.one("NetworkPolicy", "testing-injector")["spec"]["podSelector"]["matchLabels"], sj["spec"]["template"]["metadata"]["labels"])
          and sj["spec"]["template"]["metadata"]["labels"].get("iotex.io/rpc-client") == "true"
          and sj["spec"]["template"]["metadata"]["labels"].get("iotex.io/injector-shards") == "4")

    mj = jobs.get(name + "-merge", {"spec": {"template": {"spec": {}}}})
    mspec = mj["spec"]["template"]["spec"]
    order = [(c["name"], c.get("args", c.get("command"))[0 if c.get("args") else -1]) for c in containers(mspec)]
    check("the merge Job waits for the shard Job, downloads, runs `iotex-injector merge`, then uploads",
          order == [("wait-shards", "wait"), ("download", "download"), ("merge", "merge"), ("upload", "upload-merged")], order)
    merge = next((c for c in containers(mspec) if c["name"] == "merge"), {"args": []})
    check("merge gets every shard's report (0..3) and writes the merged report, histogram log and plot",
          merge["args"][1:4] == ["--out=/results/merged/report.json", "--histogram-log=/results/merged/histogram.hlog",
                                 "--plot=/results/merged/latency.svg"]
          and merge["args"][4:] == [f"/results/shards/{i}/report.json" for i in range(4)], merge["args"])
    menv = lambda n: {e["name"]: e.get("value") for e in next(c for c in containers(mspec) if c["name"] == n)["env"]}
    check("the merge Job waits on this run's shard Job and reads this run's S3 folder",
          menv("wait-shards").get("SHARD_JOB") == name and menv("wait-shards").get("SHARDS") == "4"
          and menv("download").get("RUN_ID") == name and menv("upload").get("RUN_ID") == name
          and menv("download").get("S3_REMOTE") == uenv["S3_REMOTE"]["value"], (menv("wait-shards"), menv("download")))
    role = r.one("Role", "testing-injector-merge")
    check("the merge Job's ServiceAccount may only get its shard Job",
          mspec.get("serviceAccountName") == "testing-injector-merge"
          and role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": [name], "verbs": ["get"]}], role["rules"])
    check("merge Job: bounded by activeDeadlineSeconds (waiting included)", mj["spec"].get("activeDeadlineSeconds") == 86400)
    scripts = r.one("ConfigMap", "testing-injector-scripts")["data"]
    check("loadtest-results.sh ConfigMap carries files/scripts verbatim",
          scripts.get("loadtest-results.sh") == (chart.chart / "files/scripts/loadtest-results.sh").read_text())

    pm = r.all("PodMonitor")
    pod_labels = sj["spec"]["template"]["metadata"]["labels"]
    check("a PodMonitor scrapes the shard pods' metrics port, labelling component=injector, shard and shards",
          len(pm) == 1 and selects(pm[0]["spec"]["selector"]["matchLabels"], pod_labels)
          and pm[0]["spec"]["selector"]["matchExpressions"] == [{"key": "iotex.io/injector-shards", "operator": "Exists"}]
          and pm[0]["spec"]["podMetricsEndpoints"][0]["port"] in [p["name"] for p in inj["ports"]]
          and {x.get("targetLabel") for x in pm[0]["spec"]["podMetricsEndpoints"][0]["relabelings"]} >= {"component", "shard", "shards"}
          and pm[0]["metadata"]["labels"].get("release") == "kube-prometheus-stack", pm)
    sm = r.one("ServiceMonitor", "testing-injector")["spec"]["endpoints"][0]["relabelings"]
    check("the injector ServiceMonitor drops shard pods (no double scrape through the metrics Service)",
          {"action": "drop", "sourceLabels": ["__meta_kubernetes_pod_label_iotex_io_injector_shards"], "regex": ".+"} in sm, sm)
    dash = json.loads((chart.chart / "files/dashboards/injector.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] if p["title"].startswith("Sharded run") for t in p["targets"]]
    check("the injector dashboard sums the shards live (sum over shard!=\"\" series, and per shard)",
          any(e.startswith("sum(rate(iotex_injector_accepted_total{") and 'shard!=""' in e for e in exprs)
          and any(e.startswith("sum by (shard)") for e in exprs), exprs)

    # run id from values; unchanged single-injector rendering when shards is 1
    rid = chart.render("testing", 21, *on, "--set", "injector.shards=2", "--set", "injector.runId=soak-2026-01")
    sj2 = next(j for j in rid.all("Job") if j["spec"].get("completionMode") == "Indexed")
    e2 = {e["name"]: e for e in sj2["spec"]["template"]["spec"]["initContainers"][0]["env"]}
    m2 = next(j for j in rid.all("Job") if j["metadata"]["name"].endswith("-merge"))
    check("injector.runId, when set, is every shard's run id and the merge Job's S3 folder",
          e2["IOTEX_INJECTOR_RUN_ID"].get("value") == "soak-2026-01"
          and all({"name": "RUN_ID", "value": "soak-2026-01"} in c["env"] for c in containers(m2["spec"]["template"]["spec"]) if c["name"] in ("download", "upload")))
    # (Secrets aside: the p2p Secret's keys are random at each render)
    docs = lambda *a: [d for d in chart.render("testing", 21, *on, *a).docs if d["kind"] != "Secret"]
    check("injector.shards=1 renders exactly today's single-pod injector Job (values are contracts)",
          docs("--set", "injector.shards=1") == docs() and not chart.render("testing", 21, *on).all("PodMonitor"))
    n = lambda *a: sorted(j["metadata"]["name"] for j in chart.render("testing", 21, *on, "--set", "injector.shards=4", *a).all("Job"))
    check("the sharded run's Jobs keep their names across unrelated upgrades and change with the run",
          n("--set", "gateway.config.max-lag-blocks=3") == n() and n("--set", "injector.run.rate=500") != n())
    shard_env = [e["name"] for j in chart.render("testing", 21, *on, "--set", "injector.shards=4").all("Job")
                 for c in j["spec"]["template"]["spec"].get("initContainers", []) + j["spec"]["template"]["spec"]["containers"]
                 for e in c.get("env", [])]
    check("shard pods get no IOTEX_INJECTOR_FUND_FROM (the injector refuses --fund-from with --shard N>1)",
          "IOTEX_INJECTOR_FUND_FROM" not in shard_env and "IOTEX_INJECTOR_RUN_ID" in shard_env, shard_env)
    shard_args = [a for j in chart.render("testing", 21, *on, "--set", "injector.shards=4", "--set-string", "injector.fundAmount=5").all("Job")
                  for c in j["spec"]["template"]["spec"].get("initContainers", []) if c["name"] == "iotex-injector"
                  for a in c["args"]]
    single_args = [a for j in chart.render("testing", 21, *on, "--set-string", "injector.fundAmount=5").all("Job")
                   for c in j["spec"]["template"]["spec"]["containers"] if c["name"] == "iotex-injector" for a in c["args"]]
    check("shard pods get no --fund-amount either (the injector refuses it without --fund-from); one pod keeps it",
          shard_args and not any(a.startswith("--fund-amount") for a in shard_args) and "--fund-amount=5" in single_args,
          (shard_args, single_args))
    for what, extra, needle in [
        ("--fail-if on shards (a shard's percentiles are not the run's)", ["--set-string", "injector.run.failIf=error_rate>0.01"], "not the run's"),
        ("fewer accounts than shards", ["--set", "injector.run.accounts=3"], "every shard needs its own accounts"),
        ("one key split over shards", ["--set", "injector.keyMode=key"], "cannot be split"),
        ("shards=0 (schema)", ["--set", "injector.shards=0"], "shards"),
        ("a run id that is not a plain name (schema)", ["--set", "injector.runId=../x"], "runId"),
    ]:
        p = chart.run("testing", 21, *on, "--set", "injector.shards=4", *extra)
        check(f"a sharded run refuses {what}", p.returncode != 0 and needle in p.stderr, p.stderr[:300])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--helm", required=True)
    ap.add_argument("--chart", required=True, type=Path)
    ap.add_argument("--readme", required=True, type=Path)
    args = ap.parse_args()
    chart = Chart(args.helm, args.chart)
    for env in ENVS:
        for size in SIZES:
            try:
                checks_for(chart, env, size)
            except Exception as e:  # a crash is a failed check, not a silent stop
                check(f"[{env}-{size}] assertions ran to the end", False, repr(e))
    try:
        cross_checks(chart, args.readme)
    except Exception as e:
        check("cross-render assertions ran to the end", False, repr(e))
    failed = sum(1 for _, ok in results if not ok)
    print(f"assertions: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
