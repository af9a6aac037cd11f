#!/usr/bin/env python3
"""An independent decoder for iotextypes.Action: Google's `protobuf` package with a descriptor built here
from iotex-proto's field numbers (proto/types/action.proto), no generated code and nothing shared with the
injector's Rust encoder.

Reads one hex-encoded Action per line on stdin and writes one JSON object per line on stdout with every
field the injector sets, so a test can compare them with what it encoded. A line that does not decode gives
{"error": "..."}. Installed by scripts/install-peers.sh (protobuf from PyPI into ~/.cache/iotex-toolkit).
"""
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, unknown_fields

F = descriptor_pb2.FieldDescriptorProto


def message(fdp, name, fields, oneof=None):
    m = fdp.message_type.add(name=name)
    if oneof:
        m.oneof_decl.add(name=oneof[0])
    for fname, number, ftype, label, type_name in fields:
        f = m.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = ".iotextypes." + type_name
        if oneof and fname in oneof[1]:
            f.oneof_index = 0


OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
fdp = descriptor_pb2.FileDescriptorProto(name="action_peer.proto", package="iotextypes", syntax="proto3")
message(fdp, "Transfer", [("amount", 1, F.TYPE_STRING, OPT, None), ("recipient", 2, F.TYPE_STRING, OPT, None),
                          ("payload", 3, F.TYPE_BYTES, OPT, None)])
message(fdp, "Execution", [("amount", 1, F.TYPE_STRING, OPT, None), ("contract", 2, F.TYPE_STRING, OPT, None),
                           ("data", 3, F.TYPE_BYTES, OPT, None)])
message(fdp, "AccessTuple", [("address", 1, F.TYPE_STRING, OPT, None), ("storageKeys", 2, F.TYPE_STRING, REP, None)])
message(fdp, "ActionCore", [
    ("version", 1, F.TYPE_UINT32, OPT, None), ("nonce", 2, F.TYPE_UINT64, OPT, None),
    ("gasLimit", 3, F.TYPE_UINT64, OPT, None), ("gasPrice", 4, F.TYPE_STRING, OPT, None),
    ("chainID", 5, F.TYPE_UINT32, OPT, None), ("gasTipCap", 6, F.TYPE_STRING, OPT, None),
    ("gasFeeCap", 7, F.TYPE_STRING, OPT, None), ("accessList", 9, F.TYPE_MESSAGE, REP, "AccessTuple"),
    ("txType", 28, F.TYPE_UINT32, OPT, None),
    ("transfer", 10, F.TYPE_MESSAGE, OPT, "Transfer"), ("execution", 12, F.TYPE_MESSAGE, OPT, "Execution"),
], oneof=("action", {"transfer", "execution"}))
message(fdp, "Action", [("core", 1, F.TYPE_MESSAGE, OPT, "ActionCore"), ("senderPubKey", 2, F.TYPE_BYTES, OPT, None),
                        ("signature", 3, F.TYPE_BYTES, OPT, None), ("encoding", 4, F.TYPE_INT32, OPT, None)])

pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
Action = message_factory.GetMessageClass(pool.FindMessageTypeByName("iotextypes.Action"))


def fields(a):
    c = a.core
    kind = c.WhichOneof("action")
    body = getattr(c, kind) if kind else None
    out = {
        "version": c.version, "nonce": c.nonce, "gas_limit": c.gasLimit, "gas_price": c.gasPrice,
        "chain_id": c.chainID, "gas_tip_cap": c.gasTipCap, "gas_fee_cap": c.gasFeeCap, "tx_type": c.txType,
        "access_list": [[t.address, list(t.storageKeys)] for t in c.accessList],
        "kind": kind, "pubkey": a.senderPubKey.hex(), "signature": a.signature.hex(), "encoding": a.encoding,
        # Unknown fields would mean a number we wrote that the descriptor does not have.
        "unknown": len(unknown_fields.UnknownFieldSet(a)) + len(unknown_fields.UnknownFieldSet(c)),
    }
    if kind == "transfer":
        out.update(amount=body.amount, to=body.recipient, data=body.payload.hex())
    elif kind == "execution":
        out.update(amount=body.amount, to=body.contract, data=body.data.hex())
    return out


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        a = Action()
        a.ParseFromString(bytes.fromhex(line))
        print(json.dumps(fields(a)), flush=True)
    except Exception as e:  # one bad line must not end the peer
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
