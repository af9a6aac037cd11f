#!/usr/bin/env python3
"""Validates every object of rendered chart output against the Kubernetes JSON schemas bundled with
kubernetes-validate (offline), strict (unknown fields fail), for the oldest Kubernetes the chart supports
(Chart.yaml kubeVersion >= 1.25) and two newer ones. kubernetes-validate only warns on kinds it has no
schema for; here that fails too, except for the prometheus-operator CRDs, which validate_crds.mjs checks.
usage: check_k8s_schemas.py rendered.yaml...   Prints `N passed, N failed`."""
import sys

import kubernetes_validate
import yaml

VERSIONS = ["1.25.0", "1.30.0", "1.33.0"]
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}


def main(files):
    passed = failed = 0
    for f in files:
        with open(f) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d]
        if not docs:
            print(f"FAIL {f}: no objects rendered")
            failed += 1
        for doc in docs:
            name = f"{f.rsplit('/', 1)[-1]} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if (doc.get("apiVersion"), doc.get("kind")) in CRD_KINDS:
                continue
            for v in VERSIONS:
                try:
                    kubernetes_validate.validate(doc, v, strict=True)
                    passed += 1
                except kubernetes_validate.SchemaNotFoundError:
                    print(f"FAIL {name}: no Kubernetes {v} schema for {doc.get('apiVersion')} {doc.get('kind')}"
                          " (unknown kind or apiVersion)")
                    failed += 1
                except kubernetes_validate.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    print(f"FAIL {name} (k8s {v}) at {path}: {e.message}")
                    failed += 1
    print(f"Kubernetes schemas: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
