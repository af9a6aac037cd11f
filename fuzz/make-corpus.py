#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target under fuzz/corpus/<target>/ (committed; re-run after changing
a seed). Deterministic: the same tree gives the same files. Sources, all inside the repository:
- tests/corpus/execution-apis-requests.jsonl (ethereum/execution-apis' request corpus, CC0) for JSON-RPC
  bodies, plus batches, notifications and malformed shapes;
- docs/reference/{gateway,injector}-config.md (generated from the clap flags) for one config file per key;
- the test vectors of injector/src/native/sign_tests.rs and iotex-node.md §5/§6 (dev keys, the transfer
  whose action hash is pinned) for keys and native actions;
- access tokens signed here with the key the `token` target trusts (32 bytes of 7).
Needs Python 3 with `cryptography` (ed25519) only."""

import base64
import hashlib
import json
import pathlib
import re
import shutil
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
OUT = FUZZ / "corpus"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def jsonrpc_body():
    reqs = []
    for line in (ROOT / "tests/corpus/execution-apis-requests.jsonl").read_text().splitlines():
        case = json.loads(line)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", case["case"])
        body = json.dumps(case["request"], separators=(",", ":"))
        reqs.append(body)
        put("jsonrpc_body", f"req-{name}.json", body)
    # Batches: plain reads together (sub-batch path), mixed with a tx, a filter call and a denied method.
    put("jsonrpc_body", "batch-reads.json", "[" + ",".join(reqs[:12]) + "]")
    put("jsonrpc_body", "batch-mixed.json", json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_sendRawTransaction", "params": ["0x00"]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getFilterChanges", "params": ["0x1"]},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_sendTransaction", "params": [{}]},
        {"jsonrpc": "2.0", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 5, "method": "eth_getLogs",
         "params": [{"fromBlock": "0x0", "toBlock": "0xfffff"}]},
        1, "x", {}, [],
    ]))
    shapes = {
        "empty-batch": "[]",
        "notification": '{"jsonrpc":"2.0","method":"eth_blockNumber"}',
        "null-id": '{"jsonrpc":"2.0","id":null,"method":"eth_blockNumber"}',
        "float-id": '{"jsonrpc":"2.0","id":1.5e3,"method":"eth_blockNumber","params":[]}',
        "object-id": '{"jsonrpc":"2.0","id":{"a":1},"method":"eth_blockNumber"}',
        "escaped-method": '{"jsonrpc":"2.0","id":1,"method":"eth_get\\u0042alance","params":["0x0","latest"]}',
        "wrong-version": '{"jsonrpc":"1.0","id":1,"method":"eth_blockNumber"}',
        "duplicate-keys": '{"jsonrpc":"2.0","id":1,"id":2,"method":"a","method":"eth_blockNumber"}',
        "params-object": '{"jsonrpc":"2.0","id":1,"method":"eth_call","params":{"to":"0x0"}}',
        "not-json": "{\"jsonrpc\":",
        "scalar": "42",
        "nested-batch": "[[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"}]]",
        "whitespace": " \r\n\t{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"} \n",
        "getlogs-wide": '{"jsonrpc":"2.0","id":7,"method":"eth_getLogs","params":[{"fromBlock":"0x1","toBlock":"0x30d40"}]}',
        "subscribe": '{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}',
        "new-filter": '{"jsonrpc":"2.0","id":1,"method":"eth_newBlockFilter"}',
    }
    for name, body in shapes.items():
        put("jsonrpc_body", f"shape-{name}.json", body)
    put("jsonrpc_body", "shape-not-utf8.json", b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}')


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token():
    key = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
    pub = key.public_key().public_bytes_raw()

    def issue(tid, tier, subject, expires):
        p = bytes([1]) + pub[:4] + struct.pack(">Q", expires)
        for f in (tid, tier, subject):
            p += bytes([len(f)]) + f.encode()
        return b64(p + key.sign(b"iotex-gateway token v1\0" + p))

    put("token", "valid.txt", issue("t-0001", "free", "alice@example.com", 4102444800))
    put("token", "valid-empty-subject.txt", issue("a", "pro_1", "", 1))
    put("token", "valid-long.txt", issue("x" * 64, "t" * 32, "s" * 128, 2**64 - 1))
    put("token", "expired.txt", issue("old", "free", "bob", 0))
    t = issue("t-0002", "free", "carol", 4102444800)
    put("token", "bad-signature.txt", t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:])
    put("token", "public-keys.txt", f"# token keys\n{b64(pub)}\n{b64(pub)}  # rotation\n")
    put("token", "secret-key.txt",
        f"# iotex-gateway token signing key (ed25519). Keep it secret.\n# public key: {b64(pub)}\n{b64(bytes([7] * 32))}\n")
    put("token", "revocation.txt", "# revoked\nt-0001\nold  # leaked\n\n")


def flag_rows(doc):
    """(long, takes_value, repeatable, default) per flag row of a generated reference page."""
    for line in (ROOT / "docs/reference" / doc).read_text().splitlines():
        m = re.match(r"\| `--([a-z0-9-]+)( <[^>]*>)?` \| `[A-Z_]*` \| (`([^`]*)`|–) \| (.*) \|$", line)
        if m:
            yield m.group(1), bool(m.group(2)), "Repeatable" in m.group(5) or "repeatable" in m.group(5), m.group(4)


def toml_value(takes_value, repeatable, value):
    if not takes_value:
        return "true"
    s = json.dumps(value)
    return f"[{s}]" if repeatable else s


def configs():
    base = 'upstream = ["a=http://127.0.0.1:15014", "http://10.0.0.2:15014"]\n'
    put("gateway_config", "minimal.toml", base)
    put("gateway_config", "env-only.toml", b"\0UPSTREAM=n1=http://127.0.0.1:1,http://127.0.0.1:2\nMAX_LAG_BLOCKS=4\n")
    put("gateway_config", "file-and-env.toml",
        base.encode() + b"rate-limit-per-client = 50\n\0RATE_LIMIT_BURST=100\nCOALESCE=false\n")
    put("gateway_config", "tokens.toml", base + 'token-tier = ["free=10/20", "pro=100"]\nrequire-token = false\n')
    put("gateway_config", "dns.toml",
        'upstream-dns = ["iotex-nodes.default.svc:15014"]\nupstream-dns-interval = "2s"\n'
        'upstream-dns-server = "10.96.0.10:53"\nupstream-ws-port = 16014\n')
    for long, tv, rep, default in flag_rows("gateway-config.md"):
        if long == "config" or default is None and tv:
            continue
        put("gateway_config", f"key-{long}.toml", base + f"{long} = {toml_value(tv, rep, default)}\n")
    # The injector reads its file under `run`; a run needs an endpoint, a rate profile and accounts.
    run = ('endpoint = ["http://127.0.0.1:15014"]\nrate = 10\nduration = "5s"\n'
           'mnemonic = "test test test test test test test test test test test junk"\naccounts = 2\n')
    put("injector_config", "minimal.toml", run)
    put("injector_config", "grpc-keys.toml",
        'endpoint = ["grpc=127.0.0.1:14014", "web3=http://127.0.0.1:15014"]\nsteps = "10@5s,20@5s"\n'
        'key = ["0xbace9b2435db45b119e1570b4ea9c57993b2311e0c408d743d87cd22838ae892"]\nmix = "transfer=80,execution=20"\n')
    put("injector_config", "env.toml",
        b'endpoint = ["http://127.0.0.1:15014"]\n\0RATE=5\nDURATION=1s\n'
        b'KEY=f964b7ccc40ccace513d3159fa9c30514c4a186ebfdd7c63d69cd79a29b804b0\n')
    for long, tv, rep, default in flag_rows("injector-config.md"):
        if long == "config" or default is None and tv:
            continue
        put("injector_config", f"key-{long}.toml", run + f"{long} = {toml_value(tv, rep, default)}\n")


DEV_KEYS = [
    "bace9b2435db45b119e1570b4ea9c57993b2311e0c408d743d87cd22838ae892",
    "f964b7ccc40ccace513d3159fa9c30514c4a186ebfdd7c63d69cd79a29b804b0",
    "b437800aab0715903d36f85ea963eb2a0b6e386e7f9345a24354422a3b455757",
]
MNEMONIC = "test test test test test test test test test test test junk"


def injector_keys():
    # Byte 0 picks the input (see fuzz_targets/injector_keys.rs): 0 keys file, 1 one key, 2/3 mnemonic.
    put("injector_keys", "keys-file.txt", b"\0# dev keys\n" + "\n".join(DEV_KEYS).encode() + b"\n\n0x" + DEV_KEYS[0].encode() + b"  # again\n")
    put("injector_keys", "keys-file-bad-line.txt", b"\0" + DEV_KEYS[0].encode() + b"\nnot-a-key\n")
    put("injector_keys", "key.txt", b"\x01 0X" + DEV_KEYS[1].encode() + b" ")
    put("injector_keys", "key-zero.txt", b"\x01" + b"0" * 64)
    put("injector_keys", "mnemonic.txt", b"\x02" + MNEMONIC.encode())
    put("injector_keys", "mnemonic-iotex-path.txt", b"\x06" + MNEMONIC.encode() + b"\nm/44'/304'/0'/0")
    put("injector_keys", "mnemonic-24.txt", b"\x03" + (" ".join(["abandon"] * 23 + ["art"])).encode())
    put("injector_keys", "mnemonic-bad-checksum.txt", b"\x02" + (" ".join(["abandon"] * 12)).encode())


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def native_action():
    iotx = lambda n: str(n * 10**18).encode()
    transfer = field(1, 2, iotx(1010)) + field(2, 2, b"io1jh0ekmccywfkmj7e8qsuzsupnlk3w5337hjjg2")
    core = (field(1, 0, 1) + field(2, 0, 10) + field(3, 0, 20010) + field(4, 2, iotx(11)) + field(5, 0, 1)
            + field(10, 2, transfer))
    pub = bytes.fromhex("04403d3c0dbd3270ddfc248c3df1f9aafd60f1d8e7456961c9ef26292262cc68f0ea9690263bef9e197a38f06026814fc70912c2b98d2e90a68f8ddc5328180a01")
    sig = bytes.fromhex("15e73ad521ec9e06600c59e49b127c9dee114ad64fb2fcbe5e0d9f4c8d2b766e73d708cca1dc050dd27b20f2ee607f30428bf035f45d4da8ec2fb04a90c2c30901")
    action = field(1, 2, core) + field(2, 2, pub) + field(3, 2, sig)
    execution = field(1, 2, b"0") + field(2, 2, b"") + field(3, 2, bytes.fromhex("6080604052"))
    dyn_core = (field(1, 0, 1) + field(2, 0, 3) + field(3, 0, 100000) + field(5, 0, 2) + field(6, 2, b"1")
                + field(7, 2, b"1000000000000") + field(9, 2, field(1, 2, b"0x00") + field(2, 2, b"0x01"))
                + field(28, 0, 2) + field(29, 2, field(1, 0, 1) + field(2, 2, bytes(20)) + field(4, 0, 1))
                + field(12, 2, execution))
    put("native_action", "action-transfer.bin", b"\x00" + action)
    put("native_action", "action-transfer-seal.bin", b"\x01" + action)
    put("native_action", "action-execution-seal.bin", b"\x01" + field(1, 2, dyn_core) + field(4, 0, 0))
    put("native_action", "core-transfer.bin", b"\x02" + core)
    put("native_action", "core-dynamic-fee.bin", b"\x02" + dyn_core)
    receipt = field(1, 0, 1) + field(2, 0, 7) + field(3, 2, hashlib.sha256(b"a").digest()) + field(4, 0, 21000)
    block_id = field(1, 2, b"ab" * 32) + field(2, 0, 7)
    put("native_action", "stream-blocks.bin", b"\x03" + field(1, 2, field(1, 2, b"skipped block") + field(2, 2, receipt)) + field(2, 2, block_id))
    put("native_action", "raw-blocks.bin", b"\x04" + field(1, 2, field(2, 2, receipt)) + field(1, 2, b""))
    put("native_action", "receipt.bin", b"\x05" + field(1, 2, field(1, 2, receipt) + field(2, 2, b"ab" * 32)))
    put("native_action", "account.bin", b"\x06" + field(1, 2, field(1, 2, b"io1jh0ekmccywfkmj7e8qsuzsupnlk3w5337hjjg2") + field(2, 2, b"100") + field(3, 0, 5) + field(6, 0, 6)))
    put("native_action", "chain-meta.bin", b"\x07" + field(1, 2, field(1, 0, 12345) + field(6, 0, 1)))


def main():
    # Inputs a run found (`regression-*`) are kept: each one replays an old finding in every smoke run.
    kept = {p.relative_to(OUT): p.read_bytes() for p in OUT.glob("*/regression-*")} if OUT.exists() else {}
    if OUT.exists():
        shutil.rmtree(OUT)
    for rel, data in kept.items():
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        (OUT / rel).write_bytes(data)
    jsonrpc_body()
    token()
    configs()
    injector_keys()
    native_action()
    for d in sorted(OUT.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
