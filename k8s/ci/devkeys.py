#!/usr/bin/env python3
"""Deterministic producer keys and the genesis delegate list that matches them.

Key i of a seed is sha256("<seed>-<i>") (hex), exactly what the chart's `keys.generateDevKeys` computes
with Helm's sha256sum; index 0 is the boot node, index i>0 is delegate-(i-1). The operator address is the
IoTeX address of that key (bech32 "io" of keccak256(pubkey)[12:]).

    devkeys.py delegates --size 21 [--seed S]     # the `genesis.delegates` YAML for values-21.yaml
    devkeys.py address HEXKEY                     # the io1 address of one key (used by the assertions)
    devkeys.py secret --size 21 --seed S --name iotex-producer-keys   # a Secret manifest of those keys

The dev seed is public: its keys are for the testing environment only. Staging and production use a
Secret of their own keys (`keys.existingSecret`) and a delegate list generated from them.
"""
import argparse
import hashlib
import sys

from Crypto.Hash import keccak

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
DEV_SEED = "iotex-k8s-dev-producer"


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        m = 3 * a[0] * a[0] * pow(2 * a[1], -1, P)
    else:
        m = (b[1] - a[1]) * pow(b[0] - a[0], -1, P)
    x = (m * m - a[0] - b[0]) % P
    return x, (m * (a[0] - x) - a[1]) % P


def _mul(k, pt=G):
    acc = None
    while k:
        if k & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        k >>= 1
    return acc


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32(hrp, data8):
    acc, bits, data5 = 0, 0, []
    for b in data8:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            data5.append((acc >> bits) & 31)
    if bits:
        data5.append((acc << (5 - bits)) & 31)
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    values = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + data5 + [0] * 6
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    chk ^= 1
    return hrp + "1" + "".join(_CHARSET[d] for d in data5 + [(chk >> 5 * (5 - i)) & 31 for i in range(6)])


def dev_key(seed: str, index: int) -> str:
    return hashlib.sha256(f"{seed}-{index}".encode()).hexdigest()


def address(hexkey: str) -> str:
    k = int(hexkey, 16)
    if not 0 < k < N:
        raise ValueError("private key out of range")
    x, y = _mul(k)
    digest = keccak.new(digest_bits=256, data=x.to_bytes(32, "big") + y.to_bytes(32, "big")).digest()
    return _bech32("io", digest[12:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("delegates")
    d.add_argument("--size", type=int, required=True)
    d.add_argument("--seed", default=DEV_SEED)
    d.add_argument("--votes", default="10000000000000000000000000")
    s = sub.add_parser("secret")
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--seed", required=True)
    s.add_argument("--name", default="iotex-producer-keys")
    a = sub.add_parser("address")
    a.add_argument("key")
    args = ap.parse_args()
    if args.cmd == "address":
        print(address(args.key))
        return 0
    if args.cmd == "secret":
        print(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {args.name}\ntype: Opaque\nstringData:")
        for i in range(args.size):
            name = "bootnode-0" if i == 0 else f"delegate-{i - 1}"
            print(f"  {name}: \"{dev_key(args.seed, i)}\"")
        return 0
    print("  delegates:")
    for i in range(args.size):
        name = "bootnode-0" if i == 0 else f"delegate-{i - 1}"
        addr = address(dev_key(args.seed, i))
        print(f"    - name: {name}\n      operatorAddr: {addr}\n      rewardAddr: {addr}\n      votes: \"{args.votes}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
