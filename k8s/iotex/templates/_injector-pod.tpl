{{/* Injector pod: (dict "ctx" $ "rate" R "duration" D "steps" S ["shards" N]). Keys come from the injector
     Secret as env. With shards > 1 it is one pod of the Indexed Job: the injector runs as the init container
     (the injector image has no shell, and the upload must start only once the run is over), with
     --shard=<completion index>/N and the run id in IOTEX_INJECTOR_RUN_ID (injector.runId, or the Job's name,
     which every shard shares); the container `upload` then puts its report and histogram log in S3. */}}
{{- define "iotex.injectorPod" -}}
{{- $ := .ctx -}}
{{- $inj := $.Values.injector -}}
{{- $run := $inj.run -}}
{{- $secret := include "iotex.injectorSecret" $ -}}
{{- $shards := int (.shards | default 1) -}}
metadata:
  labels:
    {{- include "iotex.selectorLabels" (dict "ctx" $ "component" "injector") | nindent 4 }}
    iotex.io/rpc-client: "true"
    {{- if gt $shards 1 }}
    iotex.io/injector-shards: {{ $shards | quote }}
    {{- end }}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    {{- include "iotex.podSecurityContext" $ | nindent 4 }}
  {{- with $.Values.imagePullSecrets }}
  imagePullSecrets: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if gt $shards 1 }}
  initContainers:
  {{- else }}
  containers:
  {{- end }}
    - name: iotex-injector
      {{- include "iotex.image" (dict "ctx" $ "img" $.Values.images.injector) | nindent 6 }}
      command: ["/usr/local/bin/iotex-injector"]
      args:
        - run
        - --endpoint={{ include "iotex.apiUrl" $ }}
        {{- if .steps }}
        # a stepped profile replaces --rate/--duration (the injector refuses both)
        - {{ printf "--steps=%s" .steps | quote }}
        {{- else }}
        - --rate={{ .rate }}
        - --duration={{ .duration }}
        {{- if $run.rampTo }}
        - --ramp-to={{ $run.rampTo }}
        {{- end }}
        {{- end }}
        {{- if eq $inj.keyMode "mnemonic" }}
        - --accounts={{ $run.accounts }}
        {{- else if eq $inj.keyMode "keysFile" }}
        - --keys-file=/etc/iotex-injector/keys-file
        {{- end }}
        {{- with $run.mix }}
        - {{ printf "--mix=%s" . | quote }}
        {{- end }}
        {{- /* Funding is for one unsharded run (see IOTEX_INJECTOR_FUND_FROM below): a shard given
               --fund-amount without --fund-from is refused by the injector. */}}
        {{- if and $inj.fundAmount (le $shards 1) }}
        - --fund-amount={{ $inj.fundAmount }}
        {{- end }}
        - --chain-id={{ $.Values.chain.evmChainId }}
        - --metrics-listen=0.0.0.0:{{ $inj.metricsPort }}
        - --report=/reports/report.json
        {{- if gt $shards 1 }}
        - --histogram-log=/reports/histogram.hlog
        # the completion index (the pod annotation the Job controller sets); the injector takes its slice of the
        # accounts and 1/N of the rate
        - --shard=$(IOTEX_INJECTOR_SHARD_INDEX)/{{ $shards }}
        {{- end }}
        {{- with $run.failIf }}
        - {{ printf "--fail-if=%s" . | quote }}
        {{- end }}
        {{- if $run.noConfirm }}
        - --no-confirm
        {{- end }}
        {{- range $run.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        {{- if eq $inj.keyMode "mnemonic" }}
        - name: IOTEX_INJECTOR_MNEMONIC
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: mnemonic}}
        {{- else if eq $inj.keyMode "key" }}
        - name: IOTEX_INJECTOR_KEY
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: key}}
        {{- end }}
        {{- if le $shards 1 }}
        {{- /* Not for shards: every shard would fund from the same key at once and their nonces would
               collide (the injector refuses --fund-from with --shard N>1), so shards need accounts
               funded before the run (genesis balances, or one unsharded run with fundFrom first). */}}
        - name: IOTEX_INJECTOR_FUND_FROM
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: fund-from, optional: true}}
        {{- end }}
        - name: IOTEX_INJECTOR_AUTH_TOKEN
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: auth-token, optional: true}}
        {{- if gt $shards 1 }}
        {{- include "iotex.injectorShardEnv" $ | nindent 8 }}
        {{- end }}
      ports:
        - {name: metrics, containerPort: {{ $inj.metricsPort }}, protocol: TCP}
      securityContext:
        {{- include "iotex.containerSecurityContext" $ | nindent 8 }}
      resources:
        {{- toYaml $inj.resources | nindent 8 }}
      volumeMounts:
        - {name: reports, mountPath: /reports}
        - {name: tmp, mountPath: /tmp}
        {{- if eq $inj.keyMode "keysFile" }}
        - {name: keys, mountPath: /etc/iotex-injector, readOnly: true}
        {{- end }}
  {{- if gt $shards 1 }}
  containers:
    # Runs once the injector has exited 0: this shard's report and histogram log to S3 under the run id.
    - name: upload
      {{- include "iotex.image" (dict "ctx" $ "img" $.Values.images.rclone) | nindent 6 }}
      command: ["/bin/sh", "/scripts/loadtest-results.sh", "upload-shard"]
      env:
        {{- include "iotex.s3Env" $ | nindent 8 }}
        {{- include "iotex.injectorShardEnv" $ | nindent 8 }}
        - {name: RESULTS_DIR, value: /reports}
      securityContext:
        {{- include "iotex.containerSecurityContext" $ | nindent 8 }}
      resources:
        {{- toYaml $inj.merge.resources | nindent 8 }}
      volumeMounts:
        - {name: reports, mountPath: /reports, readOnly: true}
        - {name: scripts, mountPath: /scripts, readOnly: true}
        - {name: tmp, mountPath: /tmp}
  {{- end }}
  volumes:
    - name: reports
      emptyDir: {sizeLimit: 256Mi}
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
    {{- if eq $inj.keyMode "keysFile" }}
    - name: keys
      secret: {secretName: {{ $secret }}, defaultMode: 0440, items: [{key: keys-file, path: keys-file}]}
    {{- end }}
    {{- if gt $shards 1 }}
    - name: scripts
      configMap: {name: {{ include "iotex.fullname" $ }}-injector-scripts, defaultMode: 0555}
    {{- end }}
{{- end -}}

{{/* The shard's completion index and the run id, for the injector and its upload (Indexed Job pods only).
     The run id is injector.runId, or else the Job's name (label job-name, set by the
     Job controller): one value for all shards of a run, without the pod template having to know its own
     Job's name (that name is a hash of the template). */}}
{{- define "iotex.injectorShardEnv" -}}
- name: IOTEX_INJECTOR_SHARD_INDEX
  valueFrom: {fieldRef: {fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
{{- if .Values.injector.runId }}
- {name: IOTEX_INJECTOR_RUN_ID, value: {{ .Values.injector.runId | quote }}}
{{- else }}
- name: IOTEX_INJECTOR_RUN_ID
  valueFrom: {fieldRef: {fieldPath: "metadata.labels['job-name']"}}
{{- end }}
- {name: SHARD_INDEX, value: "$(IOTEX_INJECTOR_SHARD_INDEX)"}
- {name: RUN_ID, value: "$(IOTEX_INJECTOR_RUN_ID)"}
{{- end -}}
