{{/* A sharded load run (injector.job.enabled and injector.shards > 1), rendered from injector.yaml:
     - Job <full>-injector-<hash>: an Indexed Job of N pods (completions = parallelism = N); pod i runs
       `iotex-injector run --shard i/N` against the iotex Service, then uploads its report and histogram log
       to S3 (the backup bucket and credentials) under loadtests/<run id>/shards/i/;
     - Job <full>-injector-<hash>-merge: waits (through the API, get on that one Job) until the shard Job is
       Complete, downloads the N reports, runs `iotex-injector merge` and uploads the merged report, histogram
       log and plot under loadtests/<run id>/merged/. Why a second Job: k8s/README.md "Sharded load runs".
     Both are named after a hash of the shard pod, so an upgrade that leaves the run alone leaves them alone. */}}
{{- define "iotex.injectorShards" -}}
{{- $full := include "iotex.fullname" . -}}
{{- $inj := .Values.injector -}}
{{- $shards := int $inj.shards -}}
{{- if $inj.run.failIf -}}
{{- fail (printf "injector.run.failIf %q with injector.shards=%d: a shard's percentiles and rates are not the run's (only the merged report's are); judge the merged report, or run one injector" $inj.run.failIf $shards) -}}
{{- end -}}
{{- if and (eq $inj.keyMode "mnemonic") (lt (int $inj.run.accounts) $shards) -}}
{{- fail (printf "injector.run.accounts (%d) < injector.shards (%d): every shard needs its own accounts (disjoint slices, so nonces never collide)" (int $inj.run.accounts) $shards) -}}
{{- end -}}
{{- if eq $inj.keyMode "key" -}}
{{- fail (printf "injector.keyMode key with injector.shards=%d: shards take disjoint slices of the accounts, and one key cannot be split (its nonces would collide); use mnemonic or keysFile" $shards) -}}
{{- end -}}
{{- $pod := include "iotex.injectorPod" (dict "ctx" . "rate" $inj.run.rate "duration" $inj.run.duration "steps" $inj.run.steps "shards" $shards) -}}
{{- $job := printf "%s-injector-%s" $full ($pod | sha256sum | trunc 10) -}}
---
# Sharded load run: {{ $shards }} pods, pod i runs --shard i/{{ $shards }}. The run's merged report is written by {{ $job }}-merge.
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $job }}
  labels:
    {{- include "iotex.labels" . | nindent 4 }}
    app.kubernetes.io/component: injector
    iotex.io/injector-role: shards
spec:
  completionMode: Indexed
  completions: {{ $shards }}
  parallelism: {{ $shards }}
  backoffLimit: {{ $inj.job.backoffLimit }}
  {{- with $inj.job.ttlSecondsAfterFinished }}
  ttlSecondsAfterFinished: {{ . }}
  {{- end }}
  template:
    {{- $pod | nindent 4 }}
---
# Merges the run once every shard is done (see the Job above).
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $job }}-merge
  labels:
    {{- include "iotex.labels" . | nindent 4 }}
    app.kubernetes.io/component: injector-merge
  annotations:
    checkov.io/skip1: CKV_K8S_38=reads the status of its shard Job through the API (its Role allows get on that Job only)
spec:
  backoffLimit: {{ $inj.job.backoffLimit }}
  activeDeadlineSeconds: {{ $inj.merge.activeDeadlineSeconds }}
  {{- with $inj.job.ttlSecondsAfterFinished }}
  ttlSecondsAfterFinished: {{ . }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "iotex.selectorLabels" (dict "ctx" . "component" "injector-merge") | nindent 8 }}
    spec:
      serviceAccountName: {{ $full }}-injector-merge
      automountServiceAccountToken: true
      restartPolicy: Never
      enableServiceLinks: false
      securityContext:
        {{- include "iotex.podSecurityContext" . | nindent 8 }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      initContainers:
        # 1. until the shard Job is Complete; a Failed shard Job fails the merge (no partial totals)
        - name: wait-shards
          {{- include "iotex.image" (dict "ctx" . "img" .Values.images.kubectl) | nindent 10 }}
          command: ["/bin/sh", "/scripts/loadtest-results.sh", "wait"]
          env:
            - {name: SHARD_JOB, value: {{ $job }}}
            - {name: SHARDS, value: {{ $shards | quote }}}
            - {name: POLL_SECONDS, value: {{ $inj.merge.pollSeconds | quote }}}
            - {name: HOME, value: /tmp}
          securityContext:
            {{- include "iotex.containerSecurityContext" . | nindent 12 }}
          resources:
            requests: {cpu: 10m, memory: 64Mi, ephemeral-storage: 64Mi}
            limits: {memory: 128Mi}
          volumeMounts:
            - {name: scripts, mountPath: /scripts, readOnly: true}
            - {name: tmp, mountPath: /tmp}
        # 2. every shard's report and histogram log; a missing one fails the merge, naming it
        - name: download
          {{- include "iotex.image" (dict "ctx" . "img" .Values.images.rclone) | nindent 10 }}
          command: ["/bin/sh", "/scripts/loadtest-results.sh", "download"]
          env:
            {{- include "iotex.s3Env" . | nindent 12 }}
            {{- include "iotex.injectorMergeEnv" (dict "ctx" . "job" $job "shards" $shards) | nindent 12 }}
          securityContext:
            {{- include "iotex.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $inj.merge.resources | nindent 12 }}
          volumeMounts:
            - {name: results, mountPath: /results}
            - {name: scripts, mountPath: /scripts, readOnly: true}
            - {name: tmp, mountPath: /tmp}
        # 3. exact totals and percentiles from the shards' histograms (never averaged); the plot redrawn
        - name: merge
          {{- include "iotex.image" (dict "ctx" . "img" .Values.images.injector) | nindent 10 }}
          command: ["/usr/local/bin/iotex-injector"]
          args:
            - merge
            - --out=/results/merged/report.json
            - --histogram-log=/results/merged/histogram.hlog
            - --plot=/results/merged/latency.svg
            {{- range $i := until $shards }}
            - /results/shards/{{ $i }}/report.json
            {{- end }}
          securityContext:
            {{- include "iotex.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $inj.merge.resources | nindent 12 }}
          volumeMounts:
            - {name: results, mountPath: /results}
            - {name: tmp, mountPath: /tmp}
      containers:
        # 4. the merged report, histogram log and plot to loadtests/<run id>/merged/
        - name: upload
          {{- include "iotex.image" (dict "ctx" . "img" .Values.images.rclone) | nindent 10 }}
          command: ["/bin/sh", "/scripts/loadtest-results.sh", "upload-merged"]
          env:
            {{- include "iotex.s3Env" . | nindent 12 }}
            {{- include "iotex.injectorMergeEnv" (dict "ctx" . "job" $job "shards" $shards) | nindent 12 }}
          securityContext:
            {{- include "iotex.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $inj.merge.resources | nindent 12 }}
          volumeMounts:
            - {name: results, mountPath: /results, readOnly: true}
            - {name: scripts, mountPath: /scripts, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: results
          emptyDir: {sizeLimit: 1Gi}
        - name: scripts
          configMap: {name: {{ $full }}-injector-scripts, defaultMode: 0555}
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
---
# loadtest-results.sh (files/scripts, tested in k8s/ci) for the shards' upload and the merge Job.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $full }}-injector-scripts
  labels:
    {{- include "iotex.labels" . | nindent 4 }}
    app.kubernetes.io/component: injector
data:
  loadtest-results.sh: |
    {{- regexReplaceAll "(?m)^ +$" (.Files.Get "files/scripts/loadtest-results.sh" | nindent 4) "" }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $full }}-injector-merge
  labels:
    {{- include "iotex.labels" . | nindent 4 }}
    app.kubernetes.io/component: injector-merge
automountServiceAccountToken: false
---
# The merge Job reads its shard Job's status, and nothing else.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $full }}-injector-merge
  labels:
    {{- include "iotex.labels" . | nindent 4 }}
    app.kubernetes.io/component: injector-merge
rules:
  - apiGroups: [batch]
    resources: [jobs]
    resourceNames: [{{ $job }}]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $full }}-injector-merge
  labels:
    {{- include "iotex.labels" . | nindent 4 }}
    app.kubernetes.io/component: injector-merge
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $full }}-injector-merge
subjects:
  - kind: ServiceAccount
    name: {{ $full }}-injector-merge
    namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* Environment of the merge Job's S3 containers: where the run's objects are and how many shards it has. */}}
{{- define "iotex.injectorMergeEnv" -}}
- {name: RUN_ID, value: {{ .ctx.Values.injector.runId | default .job | quote }}}
- {name: SHARDS, value: {{ .shards | quote }}}
- {name: RESULTS_DIR, value: /results}
{{- end -}}
