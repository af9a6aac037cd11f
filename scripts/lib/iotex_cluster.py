#!/usr/bin/env python3
"""A real IoTeX cluster on 127.0.0.1, run from the Helm chart's own rendering.

Called by scripts/iotex-cluster.sh, which first builds the binaries. `up` renders the chart
(`helm template`, values-testing.yaml + k8s/ci/values-loopback.yaml: 5 delegates, ROLLDPOS), takes what
each node pod would get (config.yaml, genesis.yaml, start.sh, the producer keys, the P2P master keys and
the p2p-peers list) and rewrites only what differs on one machine:
  - ports: each node gets its own five (p2p, gRPC, web3, WebSocket, stats) from --base-port;
  - paths: /var/data -> DIR/<node>/data and /etc/iotex -> DIR/<node>/etc/iotex;
  - addresses: network.host 127.0.0.1, and peers' /dns4/<pod DNS>/tcp/4689 -> /ip4/127.0.0.1/tcp/<port>.
genesis.yaml is used byte for byte. Each node's bootstrap list is written by running the command of the
rendered pod's `p2p` init container (iotex-p2p-id bootstrap), and each node is started by the rendered
start.sh. A chart change that breaks the node therefore breaks this cluster.

DIR/cluster.json (the contract the tests and the demo read):
  {"chain_id", "native_chain_id", "nodes": [{"name", "web3", "ws", "grpc", "stats", "pid"}],
   "funded_keys": [hex private key, ...]}

The funded keys are iotex-core's public test keys (test/identityset), funded by values-loopback.yaml:
for loopback chains only.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("iotex-cluster: PyYAML is needed to read the chart's rendering: python3 -m pip install pyyaml")

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "k8s" / "iotex"
VALUES = [CHART / "values-testing.yaml", ROOT / "k8s" / "ci" / "values-loopback.yaml"]
RELEASE, NAMESPACE = "iotex", "iotex"
PORTS = ("p2p", "grpc", "web3", "ws", "stats")

# iotex-core test/identityset[0, 1, 2, 13, 27]: public keys, funded by values-loopback.yaml.
FUNDED_KEYS = [
    "bace9b2435db45b119e1570b4ea9c57993b2311e0c408d743d87cd22838ae892",
    "f964b7ccc40ccace513d3159fa9c30514c4a186ebfdd7c63d69cd79a29b804b0",
    "b437800aab0715903d36f85ea963eb2a0b6e386e7f9345a24354422a3b455757",
    "73c7b4a62bf165dccf8ebdea8278db811efd5b8638e2ed9683d2d94889450426",
    "cfa6ef757dee2e50351620dca002d32b9c090cfda55fb81f37f1d26b273743f1",
]


def log(msg: str) -> None:
    print(f"iotex-cluster: {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    log(f"error: {msg}")
    sys.exit(1)


def render(helm: str, extra: list[pathlib.Path]) -> list[dict]:
    cmd = [helm, "template", RELEASE, str(CHART), "-n", NAMESPACE]
    for v in VALUES + extra:
        cmd += ["-f", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        die(f"helm template failed:\n{out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs: list[dict], kind: str, name: str) -> dict:
    for d in docs:
        if d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
            return d
    die(f"the chart rendered no {kind} {name}")
    raise AssertionError  # unreachable


def secret_data(secret: dict) -> dict[str, str]:
    data = {k: str(v) for k, v in (secret.get("stringData") or {}).items()}
    for k, v in (secret.get("data") or {}).items():
        data[k] = base64.b64decode(v).decode()
    return data


def pod_spec(docs: list[dict], sts: str) -> dict:
    return find(docs, "StatefulSet", sts)["spec"]["template"]["spec"]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # As Go's listeners do: a port with only TIME_WAIT connections left is free to listen on.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def rewrite_paths(value, data_dir: str):
    """Every string under /var/data moves to the node's own data directory."""
    if isinstance(value, dict):
        return {k: rewrite_paths(v, data_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_paths(v, data_dir) for v in value]
    if isinstance(value, str) and (value == "/var/data" or value.startswith("/var/data/")):
        return data_dir + value[len("/var/data"):]
    return value


def http_ok(url: str, body: bytes | None = None) -> bytes | None:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.read() if r.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def head(web3: str) -> int | None:
    raw = http_ok(web3, b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}')
    try:
        return int(json.loads(raw)["result"], 16) if raw else None
    except (ValueError, KeyError, TypeError):
        return None


def up(args) -> None:
    d = pathlib.Path(args.dir).resolve()
    if (d / "cluster.json").exists():
        die(f"{d}/cluster.json exists: a cluster may be running there; `iotex-cluster.sh down {d}` first")
    extra = [pathlib.Path(v).resolve() for v in args.values]
    for v in extra:
        if not v.is_file():
            die(f"--values {v}: no such file")
    docs = render(args.helm, extra)
    cm = find(docs, "ConfigMap", f"{RELEASE}-node-config")["data"]
    keys = secret_data(find(docs, "Secret", f"{RELEASE}-producer-keys"))
    p2p_keys = secret_data(find(docs, "Secret", f"{RELEASE}-p2p"))
    config = yaml.safe_load(cm["config.yaml"])
    genesis_meta = yaml.safe_load(cm["genesis.yaml"])
    size = len(genesis_meta["poll"]["delegates"])
    names = ["bootnode-0"] + [f"delegate-{i}" for i in range(size - 1)]
    missing = [n for n in names if n not in keys]
    if missing:
        die(f"the rendered keys Secret lacks {missing}")
    pods = {"bootnode-0": f"{RELEASE}-bootnode-0", **{f"delegate-{i}": f"{RELEASE}-delegate-{i}" for i in range(size - 1)}}
    roles = {n: n.split("-")[0] for n in names}

    ports = {n: {p: args.base_port + 10 * i + j for j, p in enumerate(PORTS)} for i, n in enumerate(names)}
    busy = [p for n in names for p in ports[n].values() if not port_free(p)]
    if busy:
        die(f"127.0.0.1 ports {busy} are in use; pick another range with --base-port (or IOTEX_CLUSTER_BASE_PORT)")

    # The p2p-peers list, with each pod's DNS address replaced by that node's loopback port.
    peers_lines = []
    for line in cm["p2p-peers"].splitlines():
        if not line.strip():
            continue
        name, addr = line.split()
        if name not in ports:
            die(f"p2p-peers names {name}, which is not a node of this cluster")
        if not re.fullmatch(r"/dns4/[^/]+/tcp/\d+", addr):
            die(f"p2p-peers address {addr!r} is not /dns4/<host>/tcp/<port>")
        peers_lines.append(f"{name} /ip4/127.0.0.1/tcp/{ports[name]['p2p']}")

    d.mkdir(parents=True, exist_ok=True)
    bin_dir = d / "bin"
    bin_dir.mkdir(exist_ok=True)
    for src, dst in ((args.server, "iotex-server"), (args.p2p_id, "iotex-p2p-id")):
        target = bin_dir / dst
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(pathlib.Path(src).resolve())

    nodes = []
    for name in names:
        nd = d / name
        etc = nd / "etc" / "iotex"
        for sub in ("keys", "p2p-keys", "p2p"):
            (etc / sub).mkdir(parents=True, exist_ok=True)
        (nd / "data").mkdir(exist_ok=True)
        cfg = rewrite_paths(json.loads(json.dumps(config)), str(nd / "data"))
        cfg["network"]["host"] = "127.0.0.1"
        cfg["network"]["port"] = ports[name]["p2p"]
        cfg["api"]["port"] = ports[name]["grpc"]
        cfg["api"]["web3port"] = ports[name]["web3"]
        cfg["api"]["webSocketPort"] = ports[name]["ws"]
        cfg["system"]["httpStatsPort"] = ports[name]["stats"]
        (etc / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=True))
        (etc / "genesis.yaml").write_text(cm["genesis.yaml"])
        (etc / "start.sh").write_text(cm["start.sh"].replace("/etc/iotex", str(etc)))
        (etc / "p2p-peers").write_text("\n".join(peers_lines) + "\n")
        for k, v in keys.items():
            (etc / "keys" / k).write_text(v)
            (etc / "keys" / k).chmod(0o600)
        for k, v in p2p_keys.items():
            (etc / "p2p-keys" / k).write_text(v)
            (etc / "p2p-keys" / k).chmod(0o600)

        # The pod's own `p2p` init container command, paths rewritten like the rest.
        spec = pod_spec(docs, f"{RELEASE}-{roles[name]}")
        init = next((c for c in spec.get("initContainers", []) if c["name"] == "p2p"), None)
        if init is None:
            die(f"the {roles[name]} pod has no `p2p` init container")
        cmd = [str(bin_dir / "iotex-p2p-id")] + [
            a.replace("/etc/iotex", str(etc)).replace("$(POD_NAME)", pods[name]) for a in init["command"][1:]
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            die(f"{name}: the p2p init step failed: {out.stderr.strip()}")

        env = {
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(nd),
            "IOTEX_ROLE": roles[name],
            "POD_NAME": pods[name],
        }
        (nd / "launch.json").write_text(json.dumps({"cmd": ["/bin/sh", str(etc / "start.sh")], "env": env}))
        proc = launch(nd)
        nodes.append({
            "name": name,
            "web3": f"http://127.0.0.1:{ports[name]['web3']}",
            "ws": f"ws://127.0.0.1:{ports[name]['ws']}",
            "grpc": f"127.0.0.1:{ports[name]['grpc']}",
            "stats": f"http://127.0.0.1:{ports[name]['stats']}",
            "p2p": f"/ip4/127.0.0.1/tcp/{ports[name]['p2p']}",
            "pid": proc.pid,
            "dir": str(nd),
        })
        log(f"{name}: pid {proc.pid}, web3 {nodes[-1]['web3']}, log {nd / 'node.log'}")

    cluster = {
        "chain_id": int(config["chain"]["evmNetworkID"]),
        "native_chain_id": int(config["chain"]["id"]),
        "block_interval": genesis_meta["blockchain"]["blockInterval"],
        "nodes": nodes,
        "funded_keys": FUNDED_KEYS,
        "rendered_from": [str(v.relative_to(ROOT)) for v in VALUES] + [str(v) for v in extra],
    }
    (d / "cluster.json").write_text(json.dumps(cluster, indent=2) + "\n")
    if args.owner_pid:
        start_watchdog(d, args.owner_pid, args.remove_on_exit)

    # Ready = every node's /readiness is 200 and the chain has moved past block 2 on every node.
    deadline = time.monotonic() + args.timeout
    while True:
        for n in nodes:
            if _dead(n["pid"]):
                tail = (pathlib.Path(n["dir"]) / "node.log").read_text(errors="replace")[-2000:]
                down_dir(d)
                die(f"{n['name']} exited during start-up; the end of its log:\n{tail}")
        heads = [head(n["web3"]) for n in nodes]
        ready = all(http_ok(n["stats"] + "/readiness") is not None for n in nodes)
        if ready and all(h is not None and h >= 2 for h in heads):
            log(f"up: {len(nodes)} nodes, heads {heads}, chain id {cluster['chain_id']}")
            print(d / "cluster.json")
            return
        if time.monotonic() > deadline:
            down_dir(d)
            die(f"not ready after {args.timeout}s (heads {heads}, all ready: {ready}); logs are in {d}/*/node.log")
        time.sleep(0.5)


def launch(nd: pathlib.Path) -> subprocess.Popen:
    """Starts (or restarts) the node in `nd` the way `up` first did; its pid goes to nd/pid."""
    spec = json.loads((nd / "launch.json").read_text())
    logf = open(nd / "node.log", "ab")
    # Own session: `down` signals the node alone, and a test runner's Ctrl-C does not reach it.
    proc = subprocess.Popen(spec["cmd"], cwd=nd, env=spec["env"], stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True)
    (nd / "pid").write_text(str(proc.pid))
    return proc


def read_cluster(d: pathlib.Path) -> dict:
    """The running cluster's cluster.json, or a clear error."""
    try:
        return json.loads((d / "cluster.json").read_text())
    except (OSError, ValueError):
        die(f"no running cluster at {d} (no readable cluster.json)")
        raise AssertionError  # unreachable: die exits


def start_node(args) -> None:
    """Restarts one node of a running cluster (after a test killed it), on its ports and data."""
    d = pathlib.Path(args.dir).resolve()
    cluster = read_cluster(d)
    node = next((n for n in cluster["nodes"] if n["name"] == args.name), None)
    if node is None:
        die(f"no node {args.name!r} in {d}; nodes: {[n['name'] for n in cluster['nodes']]}")
    if not _dead(node["pid"]):
        die(f"{args.name} (pid {node['pid']}) is still running; stop it first")
    proc = launch(pathlib.Path(node["dir"]))
    node["pid"] = proc.pid
    tmp = d / "cluster.json.tmp"
    tmp.write_text(json.dumps(cluster, indent=2) + "\n")
    tmp.replace(d / "cluster.json")
    log(f"{args.name}: restarted as pid {proc.pid}")
    print(proc.pid)


def _dead(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True


def start_watchdog(d: pathlib.Path, owner: int, remove: bool) -> None:
    """Stops the cluster when the process that asked for it exits (a test run that crashed or was killed,
    or one whose cluster lives in a static that is never dropped), then removes DIR if asked to."""
    script = (
        f"while kill -0 {owner} 2>/dev/null && [ -f '{d}/cluster.json' ]; do sleep 1; done; "
        f"[ -f '{d}/cluster.json' ] && {sys.executable} {pathlib.Path(__file__).resolve()} down '{d}'; "
        + (f"rm -rf '{d}'" if remove else "true")
    )
    p = subprocess.Popen(["/bin/sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    (d / "watchdog.pid").write_text(str(p.pid))


def down_dir(d: pathlib.Path) -> None:
    pids = []
    for pidfile in d.glob("*/pid"):
        try:
            pids.append(int(pidfile.read_text()))
        except ValueError:
            continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)  # a test may have stopped it with SIGSTOP
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    while any(not _dead(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if not _dead(pid):
            log(f"pid {pid} ignored SIGTERM for 15s; killing it")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pidfile in d.glob("*/pid"):
        pidfile.unlink()
    (d / "cluster.json").unlink(missing_ok=True)


def down(args) -> None:
    d = pathlib.Path(args.dir).resolve()
    if not d.is_dir():
        die(f"{d} is not a cluster directory")
    down_dir(d)
    wd = d / "watchdog.pid"
    if wd.exists():
        try:
            os.kill(int(wd.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
        wd.unlink()
    log(f"down: nothing left running from {d}")


def status(args) -> None:
    d = pathlib.Path(args.dir).resolve()
    cluster = read_cluster(d)
    print(f"chain id {cluster['chain_id']} (native {cluster['native_chain_id']})")
    for n in cluster["nodes"]:
        alive = not _dead(n["pid"])
        ready = http_ok(n["stats"] + "/readiness") is not None
        h = head(n["web3"])
        print(f"{n['name']:<12} pid {n['pid']:<8} {'up' if alive else 'DOWN':<5} "
              f"{'ready' if ready else 'not-ready':<10} head {h if h is not None else '-':<8} {n['web3']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("dir")
    u.add_argument("--helm", required=True)
    u.add_argument("--server", required=True)
    u.add_argument("--p2p-id", required=True)
    u.add_argument("--base-port", type=int, default=int(os.environ.get("IOTEX_CLUSTER_BASE_PORT", "24600")))
    u.add_argument("--timeout", type=int, default=int(os.environ.get("IOTEX_CLUSTER_TIMEOUT", "120")))
    u.add_argument("--owner-pid", type=int, default=0, help="stop the cluster when this process exits")
    u.add_argument("--remove-on-exit", action="store_true", help="with --owner-pid: then delete DIR too")
    u.add_argument("--values", action="append", default=[],
                   help="an extra Helm values file layered last (a benchmark's variant of the chart; repeatable)")
    for name in ("down", "status"):
        sub.add_parser(name).add_argument("dir")
    sn = sub.add_parser("start-node")
    sn.add_argument("dir")
    sn.add_argument("name")
    args = ap.parse_args()
    if args.cmd == "up" and not 1024 <= args.base_port <= 65000:
        die("--base-port must be between 1024 and 65000")
    {"up": up, "down": down, "status": status, "start-node": start_node}[args.cmd](args)


if __name__ == "__main__":
    main()
