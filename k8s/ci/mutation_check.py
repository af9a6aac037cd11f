#!/usr/bin/env python3
"""Proves the behavioural assertions bite: breaks the chart in a copy, one way at a time, and requires
assertions.py to report the matching failure. Not part of validate.sh (it re-renders everything once per
mutation, ~10 s each); run it after changing assertions.py:
    k8s/.tools/venv/bin/python k8s/ci/mutation_check.py
Prints `N passed, N failed` (a mutation "passes" when the assertions caught it)."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CI = Path(__file__).resolve().parent
K8S = CI.parent
MUTATIONS = [
    ("a delegate gets a volume claim", "templates/nodes.yaml",
     '    {{- include "iotex.nodePod" (dict "ctx" . "role" "delegate") | nindent 4 }}\n',
     '    {{- include "iotex.nodePod" (dict "ctx" . "role" "delegate") | nindent 4 }}\n  volumeClaimTemplates:\n'
     '    - metadata: {name: extra}\n      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n',
     "only the boot node StatefulSet has volumeClaimTemplates"),
    ("the boot node restores too", "templates/_node-pod.tpl",
     '{{- if and (eq $role "delegate") $v.restore.enabled }}', '{{- if $v.restore.enabled }}',
     "bootnode has no restore init container"),
    ("delegates = size (boot node not counted)", "templates/_helpers.tpl",
     "{{ sub (int .Values.size) 1 }}", "{{ int .Values.size }}", "node pods (boot node + delegates) = 21"),
    ("checksum ignores the genesis", "templates/_node-pod.tpl",
     'checksum/config: {{ include (print $.Template.BasePath "/node-configmap.yaml") $ | sha256sum }}',
     'checksum/config: {{ $.Files.Get "files/scripts/node-start.sh" | sha256sum }}',
     "changing the genesis changes checksum/config"),
    ("the gateway misses the boot node", "templates/_helpers.tpl",
     "bootnode-0 {{ $full }}-bootnode-0.{{ $dns }}", "delegate-x {{ $full }}-delegate-x.{{ $dns }}",
     "gateway upstreams are exactly the 21 node pods"),
    ("the schema accepts any environment", "values.schema.json",
     '"enum": [\n        "testing",\n        "staging",\n        "production"\n      ],', "",
     "the values schema rejects a bad environment"),
    ("the schema accepts any size", "values.schema.json", '"enum": [\n        21,\n        101\n      ],', "",
     "the values schema rejects a bad size"),
    ("the producer key is written into config.yaml", "templates/node-configmap.yaml",
     '"producerPrivKey" "${IOTEX_PRODUCER_PRIVKEY}"', '"producerPrivKey" (sha256sum (printf "%s-0" .Values.keys.devSeed))',
     "no Secret value appears in any ConfigMap"),
    ("backups may overlap", "templates/backup.yaml", "concurrencyPolicy: Forbid", "concurrencyPolicy: Allow",
     "concurrencyPolicy Forbid"),
    ("no upload chunk size (rclone's 5 MiB: 48.8 GiB at most)", "templates/_backup.tpl",
     "- {name: RCLONE_S3_CHUNK_SIZE, value: {{ printf \"%dMi\" $chunk | quote }}}", "",
     "x 10,000 parts holds the whole boot node volume"),
    ("delegates capped below the chain", "templates/_node-pod.tpl",
     "emptyDir: {sizeLimit: {{ $v.bootnode.storage.size }}}", "emptyDir: {sizeLimit: 200Gi}",
     "delegate emptyDir sizeLimit = boot node volume"),
    ("Fluentd tails every namespace", "files/logging/fluent.conf",
     "path \"/var/log/containers/*_#{ENV['SOURCE_NAMESPACE']}_*.log\"", "path /var/log/containers/*.log",
     "Fluentd tails only the release namespace's log files"),
    ("the iotex Service selects node pods", "templates/gateway.yaml",
     '  selector:\n    {{- include "iotex.selectorLabels" (dict "ctx" . "component" "gateway") | nindent 4 }}\n  ports:\n    - {name: rpc',
     '  selector:\n    iotex.io/node: "true"\n  ports:\n    - {name: rpc', "the iotex Service selects the gateway pods"),
]


def main() -> int:
    helm = K8S / ".tools/bin/helm"
    ok = bad = 0
    for title, rel, old, new, expect in MUTATIONS:
        with tempfile.TemporaryDirectory() as tmp:
            chart = Path(tmp) / "iotex"
            shutil.copytree(K8S / "iotex", chart)
            f = chart / rel
            text = f.read_text()
            if old not in text:
                print(f"FAIL {title}: the text to mutate is no longer in {rel}")
                bad += 1
                continue
            f.write_text(text.replace(old, new, 1))
            p = subprocess.run([sys.executable, str(CI / "assertions.py"), "--helm", str(helm), "--chart", str(chart),
                                "--readme", str(K8S / "README.md")], capture_output=True, text=True)
            fails = [line for line in p.stdout.splitlines() if line.startswith("FAIL")]
            if p.returncode != 0 and any(expect in line for line in fails):
                print(f"PASS {title}: caught by '{expect}'")
                ok += 1
            else:
                print(f"FAIL {title}: expected a failure of '{expect}', got {fails[:3]}")
                bad += 1
    print(f"mutations: {ok} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
