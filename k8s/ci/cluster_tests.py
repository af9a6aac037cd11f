#!/usr/bin/env python3
"""The chart on a real control plane (control-plane.sh: kube-apiserver with PodSecurity and RBAC,
controller manager, scheduler, etcd, kwok fake nodes). Run by cluster-tests.sh with KUBECONFIG and the
pinned kubectl/helm on PATH.

kwok writes the pod status a kubelet would, but no container ever runs. So this proves what the API server,
admission, the controllers and the scheduler do with the chart (objects accepted, PodSecurity, RBAC,
scheduling and affinity, StatefulSet/Deployment/Job/CronJob behaviour, hooks, helm upgrade/rollback/
uninstall), and, for the backup, the chart's own bootnode-scale.sh run here against the API with the
backup ServiceAccount's token, as its container would run it. What a container would do by itself
(iotex-server, rclone, curl, Fluentd) is not proven here.

Cases: testing/21 (everything, including the upgrade, rollback, refusal and backup-kill scenarios),
production/101 and staging/21 (install, workloads, helm test, a manual backup, uninstall).
One named check per behaviour; prints `N passed, N failed`; exits 1 on any failure.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

CI = Path(__file__).resolve().parent
CHART = CI.parent / "iotex"
LOGGING_NS = "iotex-logging"
results: list[tuple[str, bool]] = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f"\n     {str(detail)[:3000]}" if detail != "" and not ok else ""), flush=True)
    return bool(ok)


class Failed(Exception):
    pass


def run(*args, input=None, env=None, timeout=600):
    return subprocess.run([str(a) for a in args], input=input, capture_output=True, text=True, env=env, timeout=timeout)


def kubectl(*args, ns=None, input=None):
    p = run("kubectl", *(["-n", ns] if ns else []), *args, input=input)
    if p.returncode != 0:
        raise Failed(f"kubectl {' '.join(map(str, args))}: {p.stderr.strip()}")
    return p.stdout


def kjson(*args, ns=None):
    return json.loads(kubectl("get", *args, "-o", "json", ns=ns))


def items(kind, ns, selector=None):
    return kjson(kind, *(["-l", selector] if selector else []), ns=ns)["items"]


def wait_until(what, fn, timeout=240):
    """Polls fn until it returns something truthy (bounded); raises Failed with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Failed as e:
            last = e
        time.sleep(1)
    raise Failed(f"timed out after {timeout}s waiting for {what} (last: {last})")


def apply(manifest: dict, ns=None):
    kubectl("apply", "-f", "-", ns=ns, input=json.dumps(manifest))


class Release:
    def __init__(self, env, size, work: Path):
        self.env, self.size, self.rel = env, size, env
        self.ns = f"iotex-{env}"
        self.work = work
        self.values = ["-f", CHART / f"values-{env}.yaml", "-f", CHART / f"values-{size}.yaml"]
        if env != "testing":
            self.values += ["-f", CI / "values-ci-images.yaml"]
        self.tag = f"{env}/{size}"
        self.storage = {"testing": "50Gi", "staging": "200Gi", "production": "500Gi"}[env]
        self.storage_class = "ssd" if env == "production" else ""

    def helm(self, *args, timeout=600):
        return run("helm", *args, "-n", self.ns, timeout=timeout)

    def install_or_upgrade(self, verb, *extra):
        return self.helm(verb, self.rel, CHART, *self.values, *extra, "--wait", "--timeout", "8m")

    def pods(self, selector=None):
        return items("pods", self.ns, selector)

    def pod_uids(self, component):
        return {p["metadata"]["uid"] for p in self.pods(f"app.kubernetes.io/instance={self.rel},app.kubernetes.io/component={component}")}

    def sts(self, role):
        return kjson("statefulset", f"{self.rel}-{role}", ns=self.ns)


# --- cluster preparation ---------------------------------------------------------------------------

def prepare(r: Release):
    """The namespace (Pod Security restricted: enforce, and warn/audit so violations also show as
    warnings), the Secrets the environment expects, and a volume for the boot node's claim."""
    psa = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn", "audit")}
    psa.update({f"pod-security.kubernetes.io/{m}-version": "latest" for m in ("enforce", "warn", "audit")})
    apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": r.ns, "labels": psa}})
    if r.env != "testing":
        # The public dev seed's keys, which match the delegate lists in values-21/101.yaml (a test cluster).
        keys = {"bootnode-0": hashlib.sha256(b"iotex-k8s-dev-producer-0").hexdigest()}
        for i in range(r.size - 1):
            keys[f"delegate-{i}"] = hashlib.sha256(f"iotex-k8s-dev-producer-{i + 1}".encode()).hexdigest()
        secret(r.ns, "iotex-producer-keys", keys)
        secret(r.ns, "iotex-backup-s3", {"access-key-id": "ci", "secret-access-key": "ci-secret"})
        secret(r.ns, "iotex-injector", {"mnemonic": "test test test test test test test test test test test junk"})
        # Logging's own namespace: Fluentd needs hostPath and root, which `restricted` and `baseline` forbid.
        apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOGGING_NS, "labels": {
            "pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/warn": "privileged"}}})
        secret(LOGGING_NS, "iotex-elasticsearch", {"username": "elastic", "password": "ci-password"})
        secret(LOGGING_NS, "iotex-elasticsearch-ca", {"ca.crt": "-----BEGIN CERTIFICATE-----\nci\n-----END CERTIFICATE-----\n"})
    if r.storage_class:
        apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": r.storage_class},
               "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate", "allowVolumeExpansion": True})
    # A static volume reserved for this release's boot-node claim (nothing mounts it: no kubelet).
    apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{r.ns}"},
           "spec": {"capacity": {"storage": r.storage}, "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain", "storageClassName": r.storage_class,
                    "hostPath": {"path": str(r.work / f"pv-{r.ns}")},
                    "claimRef": {"namespace": r.ns, "name": f"data-{r.rel}-bootnode-0"}}})


def secret(ns, name, data):
    apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "stringData": data}, ns=ns)


# --- checks shared by every case --------------------------------------------------------------------

def check_install(r: Release, p):
    t = r.tag
    warnings = [l for l in p.stderr.splitlines() if "PodSecurity" in l or "would violate" in l]
    check(f"{t} helm install --wait into a restricted namespace succeeds", p.returncode == 0, p.stderr)
    check(f"{t} no PodSecurity warning during the install", not warnings, warnings)
    if p.returncode != 0:
        raise Failed(f"{t}: install failed, later checks would only repeat it")
    # The API server re-checks every existing pod against `restricted` and warns about each violation.
    d = run("kubectl", "label", "--dry-run=server", "--overwrite", "ns", r.ns, "pod-security.kubernetes.io/enforce=restricted")
    check(f"{t} every pod in the namespace passes Pod Security restricted", d.returncode == 0 and "violate" not in d.stderr, d.stderr)

    boot = r.pods(f"app.kubernetes.io/instance={r.rel},app.kubernetes.io/component=bootnode")
    dele = r.pods(f"app.kubernetes.io/instance={r.rel},app.kubernetes.io/component=delegate")
    running = lambda ps: [x for x in ps if x["status"].get("phase") == "Running"]
    check(f"{t} the boot node and {r.size - 1} delegates are Running ({r.size} node pods)",
          len(running(boot)) == 1 and len(running(dele)) == r.size - 1 and len(boot) + len(dele) == r.size,
          (len(boot), len(dele), len(running(dele))))
    names = sorted(x["metadata"]["name"] for x in dele)
    check(f"{t} delegate pods are {r.rel}-delegate-0 .. -{r.size - 2}",
          names == sorted(f"{r.rel}-delegate-{i}" for i in range(r.size - 1)))

    def gateway_ready():
        d = kjson("deployment", f"{r.rel}-gateway", ns=r.ns)
        want = d["spec"].get("replicas", 1)
        ok = d["status"].get("readyReplicas", 0) == want and d["status"].get("updatedReplicas", 0) == want
        return d if ok else None
    gw = wait_until("the gateway Deployment to be Ready", gateway_ready, 120)
    want = gw["spec"]["replicas"]
    check(f"{t} the gateway Deployment is Ready ({want} of {want})", True)

    def api_endpoints():
        slices = items("endpointslices", r.ns, "kubernetes.io/service-name=iotex")
        eps = [e for s in slices for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready")]
        return eps if len(eps) == want else None
    eps = wait_until("the iotex Service's endpoints", api_endpoints, 60)
    gw_pods = {x["metadata"]["name"] for x in r.pods(f"app.kubernetes.io/instance={r.rel},app.kubernetes.io/component=gateway")}
    check(f"{t} the iotex Service's endpoints are exactly the gateway pods",
          {e["targetRef"]["name"] for e in eps} == gw_pods, (eps, gw_pods))

    pvcs = items("pvc", r.ns)
    check(f"{t} one PersistentVolumeClaim, the boot node's, Bound to its volume",
          [(c["metadata"]["name"], c["status"].get("phase")) for c in pvcs] == [(f"data-{r.rel}-bootnode-0", "Bound")],
          [(c["metadata"]["name"], c["status"].get("phase")) for c in pvcs])

    # FailedCreate is admission (e.g. Pod Security) refusing a controller's pod. A FailedScheduling is only
    # a problem for a pod still unscheduled: the boot node's first try may come before its claim is bound.
    unscheduled = {x["metadata"]["name"] for x in r.pods() if not x["spec"].get("nodeName")}
    events = [e for e in items("events", r.ns) if e.get("reason") == "FailedCreate"
              or (e.get("reason") == "FailedScheduling" and e["involvedObject"]["name"] in unscheduled)]
    check(f"{t} no FailedCreate events and no unscheduled pod (admission and the scheduler accepted every pod)",
          not events and not unscheduled, ([(e["involvedObject"]["name"], e["reason"], e["message"][:200]) for e in events], unscheduled))

    monitors = items("servicemonitors.monitoring.coreos.com", r.ns)
    rules = items("prometheusrules.monitoring.coreos.com", r.ns)
    check(f"{t} ServiceMonitors and the PrometheusRule are accepted by the real prometheus-operator CRDs",
          len(monitors) == 3 and len(rules) == 1, (len(monitors), len(rules)))

    if r.env == "testing":
        check(f"{t} no logging objects in testing", not items("daemonsets", r.ns))
    else:
        check_logging(r)


def check_logging(r: Release):
    t = r.tag
    check(f"{t} nothing of logging in the release namespace (restricted)", not items("daemonsets", r.ns))
    ds_name = f"{r.rel}-{r.ns}-fluentd"
    nodes = len(items("nodes", None))

    def fluentd_ready():
        d = kjson("daemonset", ds_name, ns=LOGGING_NS)
        return d if d["status"].get("numberReady", 0) == nodes else None
    wait_until(f"Fluentd on all {nodes} nodes", fluentd_ready, 120)
    check(f"{t} Fluentd runs on every node from its own namespace {LOGGING_NS} (privileged)", True)
    cm = kjson("configmap", ds_name, ns=LOGGING_NS)["data"]
    check(f"{t} Fluentd tails only the release namespace's container logs",
          f"ENV['SOURCE_NAMESPACE']" in cm["fluent.conf"] and "/var/log/containers/*.log" not in cm["fluent.conf"])
    env = {e["name"]: e for e in kjson("daemonset", ds_name, ns=LOGGING_NS)["spec"]["template"]["spec"]["containers"][0]["env"]}
    check(f"{t} Fluentd reads the namespace filter and Elasticsearch 8 credentials from the Secret",
          env["SOURCE_NAMESPACE"]["value"] == r.ns
          and env["ELASTICSEARCH_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "iotex-elasticsearch"
          and "ca_file" in cm["output-auth.conf"] and "user" in cm["output-auth.conf"])
    # The ILM hook Job ran to completion (helm waits for it) and was deleted on success.
    jobs = [j["metadata"]["name"] for j in items("jobs", LOGGING_NS)]
    check(f"{t} the ILM policy hook Job completed and was cleaned up", f"{r.rel}-{r.ns}-ilm" not in jobs, jobs)
    check(f"{t} no Curator CronJob anywhere",
          not [c for ns in (r.ns, LOGGING_NS) for c in items("cronjobs", ns) if "curator" in c["metadata"]["name"]])


def check_helm_test(r: Release):
    p = r.helm("test", r.rel, "--timeout", "3m")
    check(f"{r.tag} helm test passes (the hook pod is created, admitted and completes)", p.returncode == 0, p.stdout + p.stderr)


# --- backups: the chart's bootnode-scale.sh run here, as its containers would, with their token -----

class Backup:
    def __init__(self, r: Release):
        self.r = r
        self.dir = Path(tempfile.mkdtemp(prefix="backup-", dir=r.work))
        scripts = kjson("configmap", f"{r.rel}-backup-scripts", ns=r.ns)["data"]
        self.script = self.dir / "bootnode-scale.sh"
        self.script.write_text(scripts["bootnode-scale.sh"])   # the script exactly as the pod mounts it
        token = kubectl("create", "token", f"{r.rel}-backup", "--duration=2h", ns=r.ns).strip()
        admin = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json"))
        cluster = admin["clusters"][0]["cluster"]
        self.kubeconfig = self.dir / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": r.ns}}]}))
        self.sh = [shutil.which("busybox"), "sh"] if shutil.which("busybox") else ["sh"]

    def script_run(self, cmd, pod, status=None):
        env = {"PATH": os.environ["PATH"], "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.dir),
               "BOOTNODE_STS": f"{self.r.rel}-bootnode", "LEASE": f"{self.r.rel}-backup", "POD_NAME": pod,
               "POLL_SECONDS": "1", "STOP_TIMEOUT": "60"}
        if status is not None:
            (self.dir / "status").write_text(f"{status}\n")
            env["STATUS_FILE"] = str(self.dir / "status")
        return run(*self.sh, self.script, cmd, env=env, timeout=180)

    def create_job(self, name, cronjob="backup"):
        kubectl("create", "job", f"--from=cronjob/{self.r.rel}-{cronjob}", name, ns=self.r.ns)

    def job_pods(self, job):
        return sorted(self.r.pods(f"job-name={job}"), key=lambda p: p["metadata"]["creationTimestamp"])

    def running_pod(self, job, exclude=()):
        def find():
            ps = [p for p in self.job_pods(job) if p["status"].get("phase") == "Running" and p["metadata"]["name"] not in exclude]
            return ps[0] if ps else None
        return wait_until(f"a Running pod of job {job}", find, 120)

    def unschedulable(self, pod):
        """Waits until the scheduler has tried the pod and found no node (PodScheduled False, Unschedulable)."""
        def tried():
            p = kjson("pod", pod, ns=self.r.ns)
            c = [c for c in p["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
            return p if c and c[0]["status"] == "False" and c[0].get("reason") == "Unschedulable" else None
        return wait_until(f"the scheduler to report {pod} unschedulable", tried, 60)

    def finish(self, pod, code):
        """The pod's last container exits with `code` (kwok stage iotex-backup-exit)."""
        kubectl("annotate", "pod", pod, f"ci.iotex.io/exit-code={code}", ns=self.r.ns)

    def job_condition(self, job):
        conds = kjson("job", job, ns=self.r.ns)["status"].get("conditions") or []
        return {c["type"] for c in conds if c["status"] == "True"}

    def replicas(self):
        return self.r.sts("bootnode")["spec"]["replicas"]

    def bootnode_running(self):
        ps = self.r.pods(f"app.kubernetes.io/instance={self.r.rel},app.kubernetes.io/component=bootnode")
        return ps and ps[0]["status"].get("phase") == "Running" and not ps[0]["metadata"].get("deletionTimestamp") and ps[0]

    def lease(self):
        l = kjson("lease", f"{self.r.rel}-backup", ns=self.r.ns)
        return l["spec"].get("holderIdentity"), l["metadata"].get("annotations", {}).get("iotex.io/bootnode-stopped")

    def full_run(self, job, pod):
        """acquire, stop, (the upload: backup.sh is tested against S3 in test_backup_restore.py), start."""
        a = self.script_run("acquire", pod)
        s = self.script_run("stop", pod)
        down = self.replicas() == 0 and not self.bootnode_running()
        st = self.script_run("start", pod, status=0)
        return a, s, down, st


def backup_completes(r: Release, b: Backup):
    t = r.tag
    boot = wait_until("the boot node", b.bootnode_running, 120)
    b.create_job("backup-manual")
    pod = b.running_pod("backup-manual")
    check(f"{t} a manual backup pod (kubectl create job --from=cronjob) is admitted and placed beside the boot node",
          pod["spec"]["nodeName"] == boot["spec"]["nodeName"], (pod["spec"]["nodeName"], boot["spec"]["nodeName"]))
    a, s, down, st = b.full_run("backup-manual", pod["metadata"]["name"])
    check(f"{t} the backup ServiceAccount may take the Lease and stop the boot node (RBAC), which goes down",
          a.returncode == 0 and s.returncode == 0 and down, a.stderr + s.stderr)
    check(f"{t} start restarts the boot node and releases the Lease",
          st.returncode == 0 and b.replicas() == 1 and b.lease()[0] is None, st.stderr)
    wait_until("the boot node Running again", b.bootnode_running, 120)
    b.finish(pod["metadata"]["name"], 0)
    wait_until("the manual backup Job to complete", lambda: "Complete" in b.job_condition("backup-manual"), 120)
    check(f"{t} the manual backup Job completes, and the boot node is back", b.bootnode_running())


def backup_concurrency(r: Release, b: Backup):
    """Two backups started at the same time: the second refuses while the first holds the Lease; retried
    by its Job, it waits (Pending: its affinity is to the stopped boot node) and runs after the first."""
    t = r.tag
    b.create_job("backup-a")
    b.create_job("backup-b")
    pa = b.running_pod("backup-a")["metadata"]["name"]
    pb = b.running_pod("backup-b")["metadata"]["name"]
    a = b.script_run("acquire", pa)
    refused = b.script_run("acquire", pb)
    check(f"{t} of two backups started together, the second refuses while the first holds the Lease",
          a.returncode == 0 and refused.returncode == 1 and "refusing" in refused.stderr, a.stderr + refused.stderr)
    b.finish(pb, 1)   # its acquire-lease init container failed: the pod fails, nothing was stopped
    check(f"{t} the refused backup stopped nothing", b.replicas() == 1 and b.lease()[0] == pa)
    s = b.script_run("stop", pa)
    retry = wait_until("backup-b's retry pod", lambda: [p for p in b.job_pods("backup-b") if p["metadata"]["name"] != pb], 60)[0]
    retry = b.unschedulable(retry["metadata"]["name"])
    check(f"{t} while the first backup has the boot node stopped, the second waits (the scheduler finds no place)",
          s.returncode == 0 and retry["status"].get("phase") == "Pending" and not retry["spec"].get("nodeName"), retry["status"])
    st = b.script_run("start", pa, status=0)
    b.finish(pa, 0)
    pr = b.running_pod("backup-b", exclude=(pb,))["metadata"]["name"]
    a2, s2, down2, st2 = b.full_run("backup-b", pr)
    b.finish(pr, 0)
    wait_until("both Jobs to complete", lambda: "Complete" in b.job_condition("backup-a") and "Complete" in b.job_condition("backup-b"), 120)
    check(f"{t} after the first backup restarts the boot node, the second runs to completion (one at a time)",
          st.returncode == 0 and a2.returncode == 0 and down2 and st2.returncode == 0, st.stderr + a2.stderr + s2.stderr + st2.stderr)


def backup_killed(r: Release, b: Backup, how):
    """Defect 3.2: a backup pod dies between stopping and restarting the boot node. The guard CronJob
    brings the boot node back, and the next backup (the Job's retry) schedules and runs."""
    t = r.tag
    job = f"backup-killed-{how}"
    b.create_job(job)
    pod = b.running_pod(job)["metadata"]["name"]
    a, s = b.script_run("acquire", pod), b.script_run("stop", pod)
    check(f"{t} [{how}] a backup stopped the boot node (Lease marked stopped)",
          a.returncode == 0 and s.returncode == 0 and b.replicas() == 0 and b.lease() == (pod, "true"), a.stderr + s.stderr)
    if how == "deleted":
        kubectl("delete", "pod", pod, "--grace-period=0", "--force", "--wait=false", ns=r.ns)   # eviction, deadline, node loss
    else:
        b.finish(pod, 137)   # OOM-killed: the pod fails and stays, its last container never ran
    wait_until("the killed pod to be gone or Failed", lambda: all(
        p["status"].get("phase") == "Failed" for p in b.job_pods(job) if p["metadata"]["name"] == pod), 60)
    retry = wait_until("the Job's next pod", lambda: [p for p in b.job_pods(job) if p["metadata"]["name"] != pod], 60)[0]
    retry = b.unschedulable(retry["metadata"]["name"])
    check(f"{t} [{how}] the next backup pod cannot schedule while the boot node is down (its affinity)",
          not retry["spec"].get("nodeName"), retry["status"])
    guard_job = f"guard-{how}"
    b.create_job(guard_job, cronjob="backup-guard")
    gpod = wait_until("the guard pod to be scheduled", lambda: [p for p in b.job_pods(guard_job) if p["spec"].get("nodeName")], 60)[0]
    g = b.script_run("guard", gpod["metadata"]["name"])
    check(f"{t} [{how}] the backup-guard job (no affinity: it schedules with the boot node down) restarts the boot node",
          g.returncode == 0 and b.replicas() == 1 and "restarting the boot node" in g.stderr, g.stderr)
    wait_until("the boot node Running again", b.bootnode_running, 120)
    check(f"{t} [{how}] the boot node comes back and the guard released the Lease", b.lease() == (None, "false"), b.lease())
    nxt = b.running_pod(job, exclude=(pod,))["metadata"]["name"]
    a2, s2, down2, st2 = b.full_run(job, nxt)
    b.finish(nxt, 0)
    wait_until(f"job {job} to complete", lambda: "Complete" in b.job_condition(job), 120)
    check(f"{t} [{how}] the next backup schedules beside the restarted boot node and runs to completion",
          a2.returncode == 0 and down2 and st2.returncode == 0 and b.bootnode_running(), a2.stderr + s2.stderr + st2.stderr)
    again = b.script_run("guard", "guard-idle")
    check(f"{t} [{how}] the guard leaves a boot node that no backup stopped alone",
          again.returncode == 0 and "no backup has the boot node stopped" in again.stderr, again.stderr)


# --- upgrades, rollback, refusals, uninstall --------------------------------------------------------

def snapshot(r: Release):
    return {c: r.pod_uids(c) for c in ("bootnode", "delegate", "gateway", "injector")}


def injector_job(r: Release):
    jobs = [j for j in items("jobs", r.ns, f"app.kubernetes.io/instance={r.rel},app.kubernetes.io/component=injector")]
    return [(j["metadata"]["name"], j["metadata"]["uid"], "Complete" in {c["type"] for c in j["status"].get("conditions") or [] if c["status"] == "True"})
            for j in jobs]


def upgrades(r: Release):
    t = r.tag
    wait_until("the injector load run to finish", lambda: [j for j in injector_job(r) if j[2]], 120)
    before, job = snapshot(r), injector_job(r)
    generations = {role: r.sts(role)["metadata"]["generation"] for role in ("bootnode", "delegate")}
    gw_cm = kjson("configmap", f"{r.rel}-gateway-config", ns=r.ns)["data"]["gateway.toml"]
    p = r.install_or_upgrade("upgrade", "--set", "injector.job.enabled=true", "--set", "gateway.config.max-lag-blocks=7")
    after = snapshot(r)
    new_cm = kjson("configmap", f"{r.rel}-gateway-config", ns=r.ns)["data"]["gateway.toml"]
    check(f"{t} upgrade with a changed gateway config: the ConfigMap changes and no pod restarts (hot reload)",
          p.returncode == 0 and "max-lag-blocks = 7" in new_cm and gw_cm != new_cm and after == before, p.stderr or (before, after))
    check(f"{t} that upgrade leaves the finished injector load run alone", injector_job(r) == job, (job, injector_job(r)))

    p = r.install_or_upgrade("upgrade", "--set", "injector.job.enabled=true", "--set", "gateway.config.max-lag-blocks=7",
                             "--set", "images.gateway.tag=0.1.1")
    after2 = snapshot(r)
    images = {c["image"] for x in r.pods(f"app.kubernetes.io/instance={r.rel},app.kubernetes.io/component=gateway")
              for c in x["spec"]["containers"]}
    check(f"{t} upgrade with a new gateway image tag rolls the gateway pods, and only them",
          p.returncode == 0 and not (after2["gateway"] & before["gateway"]) and images == {"iotex-toolkit/iotex-gateway:0.1.1"}
          and {k: v for k, v in after2.items() if k != "gateway"} == {k: v for k, v in before.items() if k != "gateway"},
          p.stderr or (images, after2))
    now = {role: r.sts(role)["metadata"]["generation"] for role in ("bootnode", "delegate")}
    check(f"{t} the node StatefulSets were not touched by either upgrade (generation unchanged)", now == generations, (generations, now))
    check(f"{t} ... nor the finished injector load run", injector_job(r) == job, (job, injector_job(r)))

    p = r.helm("rollback", r.rel, "2", "--wait", "--timeout", "5m")
    after3 = snapshot(r)
    images = {c["image"] for x in r.pods(f"app.kubernetes.io/instance={r.rel},app.kubernetes.io/component=gateway")
              for c in x["spec"]["containers"]}
    check(f"{t} helm rollback works: the gateway is back on the previous image, nodes untouched",
          p.returncode == 0 and images == {"iotex-toolkit/iotex-gateway:0.1.0"} and after3["bootnode"] == before["bootnode"]
          and after3["delegate"] == before["delegate"], p.stderr or images)
    check(f"{t} helm rollback does not restart the finished injector load run (same Job, same pod, still Complete)",
          injector_job(r) == job and after3["injector"] == before["injector"], (job, injector_job(r)))
    return int(json.loads(r.helm("history", r.rel, "-o", "json").stdout)[-1]["revision"])


def refusals(r: Release, revision):
    t = r.tag
    keep = ["--set", "injector.job.enabled=true", "--set", "gateway.config.max-lag-blocks=7"]
    # A changed delegate list, as a values file (a --set on a list element would replace the whole list).
    delegates = json.loads(r.helm("get", "values", r.rel, "--all", "-o", "json").stdout)["genesis"]["delegates"]
    delegates[3]["votes"] = str(int(delegates[3]["votes"]) * 2)
    changed = r.work / "changed-delegates.json"   # JSON is YAML
    changed.write_text(json.dumps({"genesis": {"delegates": delegates}}))
    for what, args in (("timestamp", ["--set", "genesis.timestamp=1767225700"]),
                       ("delegate list", ["-f", changed]),
                       ("size 21 -> 101", ["-f", CHART / "values-101.yaml"])):
        p = r.install_or_upgrade("upgrade", *keep, *args)
        check(f"{t} a genesis change ({what}) on upgrade is refused, saying how to reset on purpose",
              p.returncode != 0 and "genesis change refused" in p.stderr and "helm uninstall" in p.stderr
              and "delete pvc" in p.stderr, p.stderr)
    p = r.install_or_upgrade("upgrade", *keep, "--set", "bootnode.storage.size=80Gi")
    check(f"{t} a boot-node storage size change gets a clear message, not an immutable-field error",
          p.returncode != 0 and "bootnode.storage.size cannot change from 50Gi to 80Gi" in p.stderr
          and "--cascade=orphan" in p.stderr and "Forbidden" not in p.stderr, p.stderr)
    last = int(json.loads(r.helm("history", r.rel, "-o", "json").stdout)[-1]["revision"])
    check(f"{t} refused upgrades leave the release as it was (no new revision)", last == revision, (last, revision))


def sa_kubeconfig(r: Release, sa: str, where: Path) -> Path:
    """A kubeconfig holding a token of ServiceAccount `sa`: a script run with it has exactly that RBAC."""
    token = kubectl("create", "token", sa, "--duration=1h", ns=r.ns).strip()
    cluster = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json"))["clusters"][0]["cluster"]
    path = where / f"kubeconfig-{sa}"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": r.ns}}]}))
    return path


def sharded_run(r: Release):
    """injector.shards=4: the Indexed Job's pods get indexes 0..3, and the merge Job's `wait` (the chart's
    loadtest-results.sh, run here with the merge ServiceAccount's token as its init container would) returns
    only once the shard Job is Complete. Shard and merge pods stay Running until the test ends them."""
    t = r.tag
    p = r.install_or_upgrade("upgrade", "--set", "injector.job.enabled=true", "--set", "gateway.config.max-lag-blocks=7",
                             "--set", "injector.shards=4")
    check(f"{t} helm upgrade with injector.shards=4 succeeds", p.returncode == 0, p.stderr)
    sel = f"app.kubernetes.io/instance={r.rel},iotex.io/injector-role=shards"
    job = wait_until("the shard Job", lambda: items("jobs", r.ns, sel), 60)[0]
    name = job["metadata"]["name"]
    check(f"{t} the API keeps the shard Job Indexed with completions = parallelism = 4",
          job["spec"].get("completionMode") == "Indexed" and job["spec"]["completions"] == 4 and job["spec"]["parallelism"] == 4, job["spec"])
    running = lambda sel_: [x for x in r.pods(sel_) if x["status"].get("phase") == "Running"]
    pods = wait_until("4 Running shard pods", lambda: (lambda ps: ps if len(ps) == 4 else None)(running(f"job-name={name}")), 120)
    idx = {x["metadata"]["annotations"].get("batch.kubernetes.io/job-completion-index"): x for x in pods}
    check(f"{t} the Job controller created 4 shard pods with completion indexes 0..3 (hostname <job>-<index>)",
          sorted(idx) == ["0", "1", "2", "3"] and all(x["spec"].get("hostname") == f"{name}-{i}" for i, x in idx.items()),
          {i: x["spec"].get("hostname") for i, x in idx.items()})
    inj = pods[0]["spec"]["initContainers"][0]
    check(f"{t} each shard pod runs the injector with --shard=$(IOTEX_INJECTOR_SHARD_INDEX)/4, the index read from its annotation",
          "--shard=$(IOTEX_INJECTOR_SHARD_INDEX)/4" in inj["args"]
          and any(e["name"] == "IOTEX_INJECTOR_SHARD_INDEX" and "job-completion-index" in e["valueFrom"]["fieldRef"]["fieldPath"] for e in inj["env"]),
          inj["args"])
    merge_sel = f"job-name={name}-merge"
    merge_pod = wait_until("the merge pod Running", lambda: (running(merge_sel) or [None])[0], 120)
    check(f"{t} the merge Job's pod is admitted (restricted) and waits beside the shards", bool(merge_pod))

    work = Path(tempfile.mkdtemp(prefix="merge-", dir=r.work))
    script = work / "loadtest-results.sh"
    script.write_text(kjson("configmap", f"{r.rel}-injector-scripts", ns=r.ns)["data"]["loadtest-results.sh"])
    kc = sa_kubeconfig(r, f"{r.rel}-injector-merge", work)
    sh = [shutil.which("busybox"), "sh"] if shutil.which("busybox") else ["sh"]
    wait = lambda timeout: run(*sh, script, "wait", timeout=120, env={
        "PATH": os.environ["PATH"], "KUBECONFIG": str(kc), "HOME": str(work), "TMPDIR": str(work),
        "SHARD_JOB": name, "SHARDS": "4", "POLL_SECONDS": "1", "WAIT_TIMEOUT": str(timeout)})
    early = wait(2)
    check(f"{t} while the shards run, the merge Job's wait (its own token, get on the shard Job) keeps waiting",
          early.returncode == 1 and "0 of 4 shards" in early.stderr and "gave up" in early.stderr, early.stderr)
    can = lambda verb, what: run("kubectl", "auth", "can-i", verb, what, "-n", r.ns,
                                 f"--as=system:serviceaccount:{r.ns}:{r.rel}-injector-merge").stdout.strip()
    check(f"{t} the merge ServiceAccount may get its shard Job and nothing else (no list, no other Job, no pods)",
          can("get", f"jobs/{name}") == "yes" and can("list", "jobs") == "no" and can("get", "jobs/other") == "no"
          and can("get", "pods") == "no", (can("get", f"jobs/{name}"), can("list", "jobs")))
    for x in pods:
        kubectl("annotate", "pod", x["metadata"]["name"], "ci.iotex.io/exit-code=0", ns=r.ns)
    done = lambda: (lambda j: j if "Complete" in {c["type"] for c in j["status"].get("conditions") or [] if c["status"] == "True"} else None)(
        kjson("job", name, ns=r.ns))
    shard_job = wait_until("the shard Job Complete", done, 120)
    check(f"{t} the 4 shards finish: the shard Job is Complete with 4 succeeded (one per index)",
          shard_job["status"].get("succeeded") == 4 and shard_job["status"].get("completedIndexes") == "0-3", shard_job["status"])
    check(f"{t} the merge pod was still waiting when the last shard finished",
          kjson("pod", merge_pod["metadata"]["name"], ns=r.ns)["status"].get("phase") == "Running")
    late = wait(30)
    check(f"{t} once the shard Job is Complete, the merge Job's wait returns 0", late.returncode == 0 and "all 4 shards" in late.stderr, late.stderr)
    kubectl("annotate", "pod", merge_pod["metadata"]["name"], "ci.iotex.io/exit-code=0", ns=r.ns)
    mdone = lambda: (lambda j: j if "Complete" in {c["type"] for c in j["status"].get("conditions") or [] if c["status"] == "True"} else None)(
        kjson("job", f"{name}-merge", ns=r.ns))
    mj = wait_until("the merge Job Complete", mdone, 120)
    check(f"{t} the merge Job completes after the shard Job (completionTime order)",
          mj["status"].get("completionTime", "") >= shard_job["status"].get("completionTime", "~"),
          (mj["status"].get("completionTime"), shard_job["status"].get("completionTime")))
    monitors = items("podmonitors.monitoring.coreos.com", r.ns)
    check(f"{t} the shards' PodMonitor is accepted by the real prometheus-operator CRD",
          [m["metadata"]["name"] for m in monitors] == [f"{r.rel}-injector-shards"], monitors)


def storage_growth(r: Release):
    """The procedure the refusal message gives for growing the boot node's volume, followed step by step."""
    t = r.tag
    new = "600Gi"
    boot_uid = r.pod_uids("bootnode")
    p = r.install_or_upgrade("upgrade", "--set", f"bootnode.storage.size={new}")
    check(f"{t} growing bootnode.storage.size is refused first, with the steps", p.returncode != 0 and "--cascade=orphan" in p.stderr, p.stderr)
    claim = f"data-{r.rel}-bootnode-0"
    kubectl("patch", "pvc", claim, "-p", json.dumps({"spec": {"resources": {"requests": {"storage": new}}}}), ns=r.ns)
    kubectl("delete", "statefulset", f"{r.rel}-bootnode", "--cascade=orphan", ns=r.ns)
    p = r.install_or_upgrade("upgrade", "--set", f"bootnode.storage.size={new}")
    sts = r.sts("bootnode")
    size = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    dele = r.sts("delegate")["spec"]["template"]["spec"]
    limit = next(v["emptyDir"]["sizeLimit"] for v in dele["volumes"] if v["name"] == "data")
    check(f"{t} after patching the claim and orphaning the StatefulSet, the upgrade recreates it with {new}",
          p.returncode == 0 and size == new and limit == new, p.stderr or (size, limit))
    check(f"{t} ... and the running boot node pod is adopted, not restarted, its claim kept",
          r.pod_uids("bootnode") == boot_uid and [c["metadata"]["name"] for c in items("pvc", r.ns)] == [claim])


def uninstall(r: Release, expect_pvc: bool):
    t = r.tag
    p = r.helm("uninstall", r.rel, "--wait", "--timeout", "3m")
    wait_until("the release's pods to be gone", lambda: not r.pods(f"app.kubernetes.io/instance={r.rel}"), 120)
    if expect_pvc:
        pvcs = [c["metadata"]["name"] for c in items("pvc", r.ns)]
        check(f"{t} helm uninstall keeps the boot node's PVC (the chain is never lost by accident)",
              p.returncode == 0 and pvcs == [f"data-{r.rel}-bootnode-0"], p.stderr or pvcs)
    else:
        gone = wait_until("the boot node's PVC to be deleted", lambda: not items("pvc", r.ns) or None, 120) if p.returncode == 0 else False
        check(f"{t} with bootnode.storage.deleteOnUninstall=true, helm uninstall deletes the PVC", p.returncode == 0 and gone, p.stderr)


# --- cases ----------------------------------------------------------------------------------------

def case(env, size, work, deep=False, extra=()):
    r = Release(env, size, work)
    start = time.monotonic()
    print(f"\n=== {r.tag} in namespace {r.ns}", flush=True)
    try:
        prepare(r)
        p = r.install_or_upgrade("install", *extra)
        check_install(r, p)
        check_helm_test(r)
        b = Backup(r)
        backup_completes(r, b)
        if deep:
            backup_concurrency(r, b)
            backup_killed(r, b, "deleted")
            backup_killed(r, b, "oom")
            rev = upgrades(r)
            refusals(r, rev)
            sharded_run(r)
        if env == "production":
            storage_growth(r)
        uninstall(r, expect_pvc="bootnode.storage.deleteOnUninstall=true" not in extra)
    except Exception as e:   # a crash in the middle is a failure, not a silent stop
        check(f"{r.tag} case ran to the end", False, e if isinstance(e, Failed) else traceback.format_exc())
    print(f"=== {r.tag}: {time.monotonic() - start:.0f}s", flush=True)


def main():
    global CHART
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="scratch directory (the control plane's DIR)")
    ap.add_argument("--only", default="", help="comma-separated cases, e.g. testing/21")
    ap.add_argument("--chart", default=str(CHART), help="another copy of the chart (e.g. an older commit's, to see a test fail)")
    a = ap.parse_args()
    CHART = Path(a.chart).resolve()
    work = Path(a.work)
    cases = [("testing", 21, True, ("--set", "injector.job.enabled=true")),
             ("production", 101, False, ()),
             ("staging", 21, False, ("--set", "bootnode.storage.deleteOnUninstall=true"))]
    only = {c for c in a.only.split(",") if c}
    for env, size, deep, extra in cases:
        if not only or f"{env}/{size}" in only:
            case(env, size, work, deep=deep, extra=extra)
    failed = sum(1 for _, ok in results if not ok)
    print(f"\ncluster tests: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
