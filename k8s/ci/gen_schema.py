#!/usr/bin/env python3
"""Generates k8s/iotex/values.schema.json (committed): python3 k8s/ci/gen_schema.py from k8s/iotex.
validate.sh regenerates it into a temp dir and fails if the committed schema drifted."""
import json
S = lambda **k: dict(type="string", **k)
I = lambda **k: dict(type="integer", **k)
B = {"type": "boolean"}
OBJ = lambda props=None, req=None, extra=True, **k: dict(type="object", **({"properties": props} if props else {}), **({"required": req} if req else {}), **({} if extra else {"additionalProperties": False}), **k)
DUR = S(pattern=r"^[0-9]+(ms|s|m|h)$", description="Go-style duration with one unit: 200ms, 5s, 1m, 2h")
IMG = OBJ({"repository": S(minLength=1), "tag": S(), "pullPolicy": S(enum=["Always", "IfNotPresent", "Never"])}, ["repository"], extra=False)
RES = {"type": "object"}
schema = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "iotex chart values",
  "type": "object",
  "required": ["environment", "size", "genesis", "keys"],
  "properties": {
    "global": {"type": "object"},
    "environment": S(enum=["testing", "staging", "production"],
                     description="Pick one with -f values-<environment>.yaml"),
    "size": I(enum=[5, 21, 101], description="Delegates in all, the boot node included; -f values-<size>.yaml (5: the loopback cluster of scripts/iotex-cluster.sh, testing only)"),
    "nameOverride": S(), "fullnameOverride": S(maxLength=40),
    "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "images": OBJ({**{k: IMG for k in ["node", "rclone", "kubectl", "curl", "fluentd"]},
                   # built by scripts/build-images.sh: empty until the operator sets a registry (the chart
                   # then refuses staging and production with what to set)
                   **{k: OBJ({"repository": S(), "tag": S(), "pullPolicy": S(enum=["Always", "IfNotPresent", "Never"])}, extra=False)
                      for k in ["gateway", "injector", "p2pId"]}}, extra=False),
    "imagePullSecrets": {"type": "array"},
    "services": OBJ({
      "bootnode": OBJ({"name": S(pattern="^[a-z]([-a-z0-9]*[a-z0-9])?$"), "type": S(enum=["ClusterIP", "NodePort", "LoadBalancer"])}, ["name"]),
      "api": OBJ({"name": S(pattern="^[a-z]([-a-z0-9]*[a-z0-9])?$"), "type": S(enum=["ClusterIP", "NodePort", "LoadBalancer"]), "annotations": {"type": "object"}}, ["name"]),
    }, extra=False),
    "chain": OBJ({"id": I(minimum=1), "evmChainId": I(minimum=1)}, ["id", "evmChainId"], extra=False),
    "ports": OBJ({k: I(minimum=1, maximum=65535) for k in ["p2p", "grpc", "web3", "websocket", "stats"]}, extra=False),
    "p2p": OBJ({"bootstrapDelegates": I(minimum=0, maximum=10), "existingSecret": S(),
                "bootstrapNodes": {"type": "array", "items": S(pattern="^/.*/p2p/[1-9A-HJ-NP-Za-km-z]+$")}}, extra=False),
    "keys": OBJ({"existingSecret": S(), "generateDevKeys": B, "devSeed": S(minLength=1), "bootnodeMasterKey": S()}, extra=False),
    "genesis": OBJ({
      "timestamp": I(minimum=0), "blockInterval": S(pattern=r"^[0-9]+(\.[0-9]+)?(ms|s|m)$"), "blockGasLimit": I(minimum=1), "numSubEpochs": I(minimum=1),
      "pollMode": S(enum=["lifeLong", "nativeMix", "native"]),
      "forkHeights": {"type": "object", "propertyNames": {"pattern": "^[a-z][A-Za-z]*Height$"}, "additionalProperties": I(minimum=0)},
      "delegates": {"type": "array", "items": OBJ({
          "name": S(pattern="^(bootnode|delegate)-[0-9]+$"),
          "operatorAddr": S(pattern="^io1[02-9ac-hj-np-z]{38}$"),
          "rewardAddr": S(pattern="^io1[02-9ac-hj-np-z]{38}$"),
          "votes": S(pattern="^[0-9]+$")}, ["operatorAddr", "rewardAddr", "votes"], extra=False)},
      "initBalances": {"type": "object", "propertyNames": {"pattern": "^io1[02-9ac-hj-np-z]{38}$"}, "additionalProperties": S(pattern="^[0-9]+$")},
      "overrides": {"type": "object"},
    }, extra=False),
    "consensus": OBJ({k: S(pattern=r"^[0-9]+(\.[0-9]+)?(ms|s)$") for k in ["acceptBlockTTL", "acceptProposalEndorsementTTL",
                      "acceptLockEndorsementTTL", "commitTTL", "delay", "unmatchedEventTTL", "unmatchedEventInterval"]}, extra=False),
    "nodes": OBJ({"configOverrides": {"type": "object"}, "logLevel": S(enum=["debug", "info", "warn", "error"]),
                  "resources": RES, "probes": {"type": "object"}, "terminationGracePeriodSeconds": I(minimum=0),
                  "nodeSelector": {"type": "object"}, "tolerations": {"type": "array"},
                  "affinity": {"type": "object"}, "topologySpread": {"type": "object"}, "podAnnotations": {"type": "object"},
                  "pdb": OBJ({"maxUnavailable": {"type": ["integer", "string"]}})}, extra=False),
    "bootnode": OBJ({"storage": OBJ({"size": S(pattern="^[0-9]+(Mi|Gi|Ti)$", description="also each delegate's emptyDir and ephemeral-storage request"),
                                     "storageClassName": S(), "accessModes": {"type": "array", "items": S()},
                                     "deleteOnUninstall": B}, ["size"])}, extra=False),
    "backup": OBJ({"enabled": B, "schedule": S(minLength=9), "keep": I(minimum=2, description="at least 2: a restore may be reading the previous latest"),
                   "stopTimeoutSeconds": I(minimum=10), "activeDeadlineSeconds": I(minimum=60),
                   "s3": OBJ({"endpoint": S(), "region": S(), "bucket": S(minLength=3), "prefix": S(), "existingSecret": S(),
                              "accessKeyId": S(), "secretAccessKey": S(),
                              "chunkSize": S(pattern="^$|^[0-9]+(Mi|Gi)$", description='multipart chunk; "" = sized from bootnode.storage.size'),
                              "uploadConcurrency": I(minimum=1, maximum=32)}, ["bucket"], extra=False),
                   "resources": RES,
                   "guard": OBJ({"schedule": S(minLength=9)}, extra=False)}, extra=False),
    "restore": OBJ({"enabled": B, "attempts": I(minimum=1, maximum=50), "retryDelaySeconds": I(minimum=0, maximum=600), "requireBackup": B}, extra=False),
    "gateway": OBJ({
      "replicas": I(minimum=1),
      "config": OBJ({
        "listen": S(pattern=r"^[^:]*:[0-9]+$"), "admin-listen": S(pattern=r"^[^:]*:[0-9]+$"),
        "grpc-listen": S(pattern=r"^[^:]*:[0-9]+$"),
        "grpc-web-cors-origin": {"type": "array", "items": S(pattern=r"^(\*|https?://[^/?#@]+)$")},
        "grpc-allow-method": {"type": "array", "items": S()}, "grpc-deny-method": {"type": "array", "items": S()},
        "health-interval": DUR, "max-lag-blocks": I(minimum=0), "request-timeout": DUR,
        "rate-limit-per-client": I(minimum=0), "rate-limit-burst": I(minimum=0),
        "trusted-proxy": {"type": "array", "items": S()}, "tx-broadcast": I(minimum=1),
        "shutdown-delay": DUR, "shutdown-grace": DUR, "log-format": S(enum=["json", "text"]),
        # further iotex-gateway keys (no chart default: the gateway's own applies)
        "probe-timeout": DUR, "readmit-lag-blocks": I(minimum=0), "attempt-timeout": DUR,
        "max-body-bytes": I(minimum=1), "max-batch-size": I(minimum=1), "max-in-flight-per-upstream": I(minimum=1),
        "eject-after-failures": I(minimum=1), "eject-backoff": DUR, "eject-backoff-max": DUR,
        "retry-budget-percent": {"type": "number", "minimum": 0, "maximum": 100},
        "allow-method": {"type": "array", "items": S()}, "deny-method": {"type": "array", "items": S()},
        # access tokens (token-revocation-list is generated from gateway.revokedTokens)
        "token-public-key": {"type": "array", "items": S(pattern="^[A-Za-z0-9_-]{43}$")},
        "require-token": B,
        "token-tier": {"type": "array", "items": S(pattern="^[a-z0-9_-]{1,32}=[0-9]+(/[0-9]+)?$")},
        "token-revocation-reload": DUR,
        # IoTeX node limits and reload (upstream-dns* are generated from gateway.discovery)
        "busy-backoff": DUR, "upstream-batch-size": I(minimum=1, maximum=100), "config-poll-interval": DUR,
        "ws-upstream-silence": DUR, "ws-max-subscriptions": I(minimum=1), "ws-send-queue": I(minimum=1),
        "cache-max-bytes": I(minimum=0), "coalesce": B,
        # slow clients and bounded memory (docs/reliability.md)
        "header-read-timeout": DUR, "body-read-timeout": DUR, "idle-timeout": DUR,
        "max-connections": I(minimum=1), "max-connections-per-client": I(minimum=1),
        "max-response-bytes": I(minimum=1), "max-buffered-response-bytes": I(minimum=2),
      }, ["listen", "admin-listen", "grpc-listen", "shutdown-delay", "shutdown-grace"], extra=False,
        description="iotex-gateway config keys (kebab-case, as its flags); upstream lists are generated"),
      "terminationGracePeriodSeconds": I(minimum=1), "resources": RES,
      "autoscaling": OBJ({"enabled": B, "minReplicas": I(minimum=1), "maxReplicas": I(minimum=1), "targetCPUUtilizationPercentage": I(minimum=1, maximum=100)}, extra=False),
      "pdb": {"type": "object"}, "nodeSelector": {"type": "object"}, "tolerations": {"type": "array"},
      "affinity": {"type": "object"}, "podAnnotations": {"type": "object"}, "rpcFrom": {"type": "array"},
      "revokedTokens": {"type": "array", "items": S(pattern="^[A-Za-z0-9._:-]{1,64}$")},
      "discovery": OBJ({"enabled": B, "interval": DUR}, extra=False,
                       description="Find node pods through the headless Service's DNS records instead of a fixed list"),
      "hotReload": B,
    }, extra=False),
    "injector": OBJ({
      "run": OBJ({"rate": {"type": "number", "exclusiveMinimum": 0}, "duration": DUR, "rampTo": {"type": ["number", "null"]},
                  "steps": S(pattern=r"^$|^[0-9.]+@[0-9]+(ms|s|m|h)(,[0-9.]+@[0-9]+(ms|s|m|h))*$"),
                  "accounts": I(minimum=1), "mix": S(), "failIf": S(), "noConfirm": B, "extraArgs": {"type": "array", "items": S()}}, extra=False),
      "keyMode": S(enum=["mnemonic", "key", "keysFile"]), "existingSecret": S(),
      "secret": OBJ({k: S() for k in ["mnemonic", "key", "keysFile", "fundFrom", "authToken"]}, extra=False),
      "fundAmount": S(pattern="^[0-9]*$"), "metricsPort": I(minimum=1, maximum=65535),
      "job": OBJ({"enabled": B, "backoffLimit": I(minimum=0), "ttlSecondsAfterFinished": I(minimum=0, description="0 = keep the finished Job")}, extra=False),
      "soak": OBJ({"enabled": B, "schedule": S(), "rate": {"type": "number", "exclusiveMinimum": 0}, "duration": DUR}, extra=False),
      "shards": I(minimum=1, maximum=1000, description="> 1: the injector Job becomes an Indexed Job of this many shards plus a merge Job"),
      "runId": S(pattern="^$|^[a-z0-9][a-z0-9._-]{0,62}$", description='run id of a sharded run and its S3 folder; "" = the shard Job\'s name'),
      "merge": OBJ({"activeDeadlineSeconds": I(minimum=60), "pollSeconds": I(minimum=1, maximum=600), "resources": RES}, extra=False),
      "resources": RES,
    }, extra=False),
    "monitoring": OBJ({
      "serviceMonitors": OBJ({"enabled": B, "interval": DUR, "additionalLabels": {"type": "object"}}, extra=False),
      "prometheusRule": OBJ({"enabled": B, "additionalLabels": {"type": "object"}}, extra=False),
      "dashboards": OBJ({"enabled": B, "label": S(minLength=1), "labelValue": S(), "namespace": S(), "annotations": {"type": "object"}}, extra=False),
      "namespace": S(minLength=1),
    }, extra=False),
    "logging": OBJ({"enabled": B,
                    "namespace": S(pattern="^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="Fluentd's own namespace (Pod Security privileged), not the release's"),
                    "elasticsearch": OBJ({"host": S(minLength=1), "port": I(), "scheme": S(enum=["http", "https"]),
                                          "indexPrefix": S(pattern="^$|^[a-z0-9][-a-z0-9]*$"),
                                          "existingSecret": S(), "caSecret": S(), "sslVerify": B}, extra=False),
                    "retentionDays": I(minimum=1, description="days an index is kept (Elasticsearch ILM delete phase)"),
                    "fluentd": OBJ({"resources": RES}, extra=False)}, extra=False),
    "networkPolicy": OBJ({"enabled": B}, extra=False),
    "tests": OBJ({"enabled": B}, extra=False),
  },
  "additionalProperties": False,
}
json.dump(schema, open("values.schema.json", "w"), indent=2)
open("values.schema.json", "a").write("\n")
