{{/* Pod template shared by the boot node and the delegates: (dict "ctx" $ "role" "bootnode"|"delegate"). */}}
{{- define "iotex.nodePod" -}}
{{- $ := .ctx -}}
{{- $role := .role -}}
{{- $v := $.Values -}}
metadata:
  labels:
    {{- include "iotex.selectorLabels" (dict "ctx" $ "component" $role) | nindent 4 }}
    iotex.io/node: "true"
  annotations:
    # Any change to config.yaml, genesis.yaml or start.sh rolls every node pod.
    checksum/config: {{ include (print $.Template.BasePath "/node-configmap.yaml") $ | sha256sum }}
    {{- with $v.nodes.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $v.nodes.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "iotex.podSecurityContext" $ | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets: {{- toYaml . | nindent 4 }}
  {{- end }}
  topologySpreadConstraints:
    - maxSkew: {{ $v.nodes.topologySpread.maxSkew }}
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: {{ $v.nodes.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels: {app.kubernetes.io/instance: {{ $.Release.Name }}, iotex.io/node: "true"}
    - maxSkew: {{ $v.nodes.topologySpread.maxSkew }}
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels: {app.kubernetes.io/instance: {{ $.Release.Name }}, iotex.io/node: "true"}
  {{- with $v.nodes.nodeSelector }}
  nodeSelector: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.nodes.tolerations }}
  tolerations: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.nodes.affinity }}
  affinity: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $p2pInit := not $v.p2p.bootstrapNodes }}
  {{- if or $p2pInit (and (eq $role "delegate") $v.restore.enabled) }}
  initContainers:
  {{- end }}
  {{- if $p2pInit }}
    # This pod's bootstrap list: every peer in p2p-peers but itself, with the /p2p/<ID> that
    # iotex-p2p-id derives from the peer's master key (the way iotex-server derives its own).
    - name: p2p
      {{- $p2pImg := dict "repository" ($v.images.p2pId.repository | default $v.images.gateway.repository) "tag" $v.images.p2pId.tag "pullPolicy" $v.images.p2pId.pullPolicy }}
      {{- include "iotex.image" (dict "ctx" $ "img" $p2pImg) | nindent 6 }}
      command: ["/usr/local/bin/iotex-p2p-id", "bootstrap", "-peers", "/etc/iotex/p2p-peers", "-keys", "/etc/iotex/p2p-keys",
                "-self", "$(POD_NAME)", "-role", "{{ $role }}", "-out", "/etc/iotex/p2p/bootstrap.yaml"]
      env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
      securityContext:
        {{- include "iotex.containerSecurityContext" $ | nindent 8 }}
      resources:
        requests: {cpu: 10m, memory: 16Mi}
        limits: {memory: 64Mi}
      volumeMounts:
        - {name: config, mountPath: /etc/iotex/p2p-peers, subPath: p2p-peers, readOnly: true}
        - {name: p2p-keys, mountPath: /etc/iotex/p2p-keys, readOnly: true}
        - {name: p2p, mountPath: /etc/iotex/p2p}
  {{- end }}
  {{- if and (eq $role "delegate") $v.restore.enabled }}
    # Restores the latest boot-node backup into /var/data unless a complete restore is already there.
    - name: restore
      {{- include "iotex.image" (dict "ctx" $ "img" $v.images.rclone) | nindent 6 }}
      command: ["/bin/sh", "/scripts/restore.sh"]
      env:
        {{- include "iotex.s3Env" $ | nindent 8 }}
        - {name: DATA_DIR, value: /var/data}
        - {name: RESTORE_ATTEMPTS, value: {{ $v.restore.attempts | quote }}}
        - {name: RESTORE_RETRY_DELAY, value: {{ $v.restore.retryDelaySeconds | quote }}}
        - {name: RESTORE_REQUIRE_BACKUP, value: {{ ternary "1" "0" $v.restore.requireBackup | quote }}}
      securityContext:
        {{- include "iotex.containerSecurityContext" $ | nindent 8 }}
      resources:
        {{- toYaml $v.backup.resources | nindent 8 }}
      volumeMounts:
        - {name: data, mountPath: /var/data}
        - {name: scripts, mountPath: /scripts, readOnly: true}
        - {name: tmp, mountPath: /tmp}
  {{- end }}
  containers:
    - name: iotex
      {{- include "iotex.image" (dict "ctx" $ "img" $v.images.node) | nindent 6 }}
      # The image's entrypoint runs crond as root: bypass it (start.sh execs iotex-server).
      command: ["/bin/sh", "/etc/iotex/start.sh"]
      env:
        - {name: IOTEX_ROLE, value: {{ $role }}}
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
      ports:
        - {name: p2p, containerPort: {{ $v.ports.p2p }}, protocol: TCP}
        - {name: grpc, containerPort: {{ $v.ports.grpc }}, protocol: TCP}
        - {name: web3, containerPort: {{ $v.ports.web3 }}, protocol: TCP}
        - {name: websocket, containerPort: {{ $v.ports.websocket }}, protocol: TCP}
        - {name: stats, containerPort: {{ $v.ports.stats }}, protocol: TCP}
      # Data can take long to open after a restore: the startup probe holds liveness off meanwhile.
      startupProbe:
        httpGet: {path: /liveness, port: stats}
        periodSeconds: 15
        failureThreshold: {{ $v.nodes.probes.startupFailureThreshold }}
      livenessProbe:
        httpGet: {path: /liveness, port: stats}
        periodSeconds: {{ $v.nodes.probes.periodSeconds }}
        failureThreshold: {{ $v.nodes.probes.failureThreshold }}
        timeoutSeconds: {{ $v.nodes.probes.timeoutSeconds }}
      readinessProbe:
        httpGet: {path: /readiness, port: stats}
        periodSeconds: {{ $v.nodes.probes.periodSeconds }}
        failureThreshold: {{ $v.nodes.probes.failureThreshold }}
        timeoutSeconds: {{ $v.nodes.probes.timeoutSeconds }}
      securityContext:
        {{- include "iotex.containerSecurityContext" $ | nindent 8 }}
      {{- /* ephemeral-storage: a delegate's chain copy lives in its emptyDir, so the scheduler must find a
           machine with that much local disk (the boot node's data is on its volume: only /tmp here). */}}
      {{- $res := deepCopy ($v.nodes.resources | default dict) }}
      {{- $_ := set $res "requests" (merge (dict "ephemeral-storage" (ternary $v.bootnode.storage.size "1Gi" (eq $role "delegate"))) ($res.requests | default dict)) }}
      resources: {{- toYaml $res | nindent 8 }}
      volumeMounts:
        - {name: data, mountPath: /var/data}
        - {name: config, mountPath: /etc/iotex/config.yaml, subPath: config.yaml, readOnly: true}
        - {name: config, mountPath: /etc/iotex/genesis.yaml, subPath: genesis.yaml, readOnly: true}
        - {name: config, mountPath: /etc/iotex/start.sh, subPath: start.sh, readOnly: true}
        - {name: keys, mountPath: /etc/iotex/keys, readOnly: true}
        {{- if not $v.p2p.bootstrapNodes }}
        - {name: p2p-keys, mountPath: /etc/iotex/p2p-keys, readOnly: true}
        - {name: p2p, mountPath: /etc/iotex/p2p, readOnly: true}
        {{- end }}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: config
      configMap: {name: {{ include "iotex.fullname" $ }}-node-config}
    - name: keys
      secret: {secretName: {{ include "iotex.keysSecret" $ }}, defaultMode: 0440}
    - name: tmp
      emptyDir: {sizeLimit: 1Gi}
    {{- if not $v.p2p.bootstrapNodes }}
    - name: p2p-keys
      secret: {secretName: {{ include "iotex.p2pSecret" $ }}, defaultMode: 0440}
    - name: p2p
      emptyDir: {sizeLimit: 1Mi}
    {{- end }}
    {{- if eq $role "delegate" }}
    # A full copy of the chain: the same size as the boot node's volume (one value, bootnode.storage.size),
    # so a chain that fits the boot node never gets a delegate evicted for filling its emptyDir.
    - name: data
      emptyDir: {sizeLimit: {{ $v.bootnode.storage.size }}}
    - name: scripts
      configMap: {name: {{ include "iotex.fullname" $ }}-backup-scripts, defaultMode: 0555}
    {{- end }}
{{- end -}}

{{/* rclone reads its S3 remote "s3:" from the environment; credentials from the S3 Secret. */}}
{{- define "iotex.s3Env" -}}
- {name: HOME, value: /tmp}
- {name: RCLONE_CONFIG, value: /tmp/rclone.conf}
- {name: RCLONE_CONFIG_S3_TYPE, value: s3}
- {name: RCLONE_CONFIG_S3_PROVIDER, value: Other}
- {name: RCLONE_CONFIG_S3_ENV_AUTH, value: "false"}
- {name: RCLONE_CONFIG_S3_ENDPOINT, value: {{ .Values.backup.s3.endpoint | quote }}}
- {name: RCLONE_CONFIG_S3_REGION, value: {{ .Values.backup.s3.region | quote }}}
- name: RCLONE_CONFIG_S3_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ include "iotex.s3Secret" . }}, key: access-key-id}}
- name: RCLONE_CONFIG_S3_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ include "iotex.s3Secret" . }}, key: secret-access-key}}
- {name: S3_REMOTE, value: {{ printf "s3:%s/%s/%s" .Values.backup.s3.bucket .Values.backup.s3.prefix .Release.Name | quote }}}
{{- end -}}
