{{/* Names: every object is prefixed with the release name (or fullnameOverride), except the fixed
     `bootnode` and `iotex` Services that the IoTeX layout names. */}}
{{- define "iotex.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "iotex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "iotex.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "iotex.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
iotex.io/environment: {{ .Values.environment }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* selectorLabels: pass (dict "ctx" $ "component" "gateway") */}}
{{- define "iotex.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iotex.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "iotex.headless" -}}{{ include "iotex.fullname" . }}-nodes{{- end -}}
{{- define "iotex.bootnodeSts" -}}{{ include "iotex.fullname" . }}-bootnode{{- end -}}
{{- define "iotex.delegateSts" -}}{{ include "iotex.fullname" . }}-delegate{{- end -}}
{{- define "iotex.delegateReplicas" -}}{{ sub (int .Values.size) 1 }}{{- end -}}
{{- define "iotex.keysSecret" -}}{{ .Values.keys.existingSecret | default (printf "%s-producer-keys" (include "iotex.fullname" .)) }}{{- end -}}
{{- define "iotex.s3Secret" -}}{{ .Values.backup.s3.existingSecret | default (printf "%s-backup-s3" (include "iotex.fullname" .)) }}{{- end -}}
{{- define "iotex.injectorSecret" -}}{{ .Values.injector.existingSecret | default (printf "%s-injector" (include "iotex.fullname" .)) }}{{- end -}}
{{- define "iotex.apiUrl" -}}http://{{ .Values.services.api.name }}.{{ .Release.Namespace }}.svc:{{ .Values.ports.web3 }}{{- end -}}

{{/* The node pods, in genesis order: bootnode-0, delegate-0 ... delegate-(size-2). Each line is
     "<name> <pod DNS name>"; the gateway's upstreams and the dev keys are generated from this list. */}}
{{- define "iotex.nodePods" -}}
{{- $full := include "iotex.fullname" . -}}
{{- $dns := printf "%s.%s.svc" (include "iotex.headless" .) .Release.Namespace -}}
bootnode-0 {{ $full }}-bootnode-0.{{ $dns }}
{{- range $i := until (int (include "iotex.delegateReplicas" .)) }}
delegate-{{ $i }} {{ $full }}-delegate-{{ $i }}.{{ $dns }}
{{- end }}
{{- end -}}

{{- define "iotex.image" -}}
{{- $tag := .img.tag | default .ctx.Chart.AppVersion -}}
image: {{ printf "%s:%s" .img.repository $tag | quote }}
imagePullPolicy: {{ .img.pullPolicy }}
{{- end -}}

{{/* Hardening shared by every pod: non-root, RuntimeDefault seccomp. */}}
{{- define "iotex.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
fsGroup: 65534
fsGroupChangePolicy: OnRootMismatch
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "iotex.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* Seconds in a Go-style duration with one unit (200ms, 5s, 1m, 2h); fails on anything else. */}}
{{- define "iotex.durationSeconds" -}}
{{- $d := toString . -}}
{{- if regexMatch "^[0-9]+ms$" $d -}}{{ divf (trimSuffix "ms" $d | float64) 1000 }}
{{- else if regexMatch "^[0-9]+s$" $d -}}{{ trimSuffix "s" $d }}
{{- else if regexMatch "^[0-9]+m$" $d -}}{{ mul (trimSuffix "m" $d | int) 60 }}
{{- else if regexMatch "^[0-9]+h$" $d -}}{{ mul (trimSuffix "h" $d | int) 3600 }}
{{- else -}}{{ fail (printf "duration %q: use one unit, e.g. 200ms, 5s, 1m, 2h" $d) }}
{{- end -}}
{{- end -}}

{{/* Refuse combinations that would deploy a broken or unsafe cluster. Included by every node template. */}}
{{- define "iotex.validate" -}}
{{- $n := len .Values.genesis.delegates -}}
{{- if ne $n (int .Values.size) -}}
{{- fail (printf "genesis.delegates has %d entries but size is %v: use -f values-%v.yaml (one entry per node pod, boot node included)" $n .Values.size .Values.size) -}}
{{- end -}}
{{- if and (eq (int .Values.size) 5) (ne .Values.environment "testing") -}}
{{- fail (printf "size 5 is the loopback cluster's (scripts/iotex-cluster.sh), testing only; use -f values-21.yaml or -f values-101.yaml for %s" .Values.environment) -}}
{{- end -}}
{{- if and .Values.keys.generateDevKeys (ne .Values.environment "testing") -}}
{{- fail (printf "keys.generateDevKeys uses public keys: allowed in testing only, not in %s; set keys.existingSecret" .Values.environment) -}}
{{- end -}}
{{- if not (or .Values.keys.generateDevKeys .Values.keys.existingSecret) -}}
{{- fail "producer keys: set keys.existingSecret (or keys.generateDevKeys in testing)" -}}
{{- end -}}
{{- $drain := addf (include "iotex.durationSeconds" (index .Values.gateway.config "shutdown-delay") | float64) (include "iotex.durationSeconds" (index .Values.gateway.config "shutdown-grace") | float64) -}}
{{- if le (float64 .Values.gateway.terminationGracePeriodSeconds) $drain -}}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%v) must exceed shutdown-delay + shutdown-grace (%vs)" .Values.gateway.terminationGracePeriodSeconds $drain) -}}
{{- end -}}
{{- end -}}

{{/* The bootstrap peers, "<name> <address>" per line: the boot node through its Service, then the first
     p2p.bootstrapDelegates delegates by their stable pod names. */}}
{{- define "iotex.p2pPeers" -}}
{{- $full := include "iotex.fullname" . -}}
{{- $dns := printf "%s.%s.svc" (include "iotex.headless" .) .Release.Namespace -}}
bootnode-0 /dns4/{{ .Values.services.bootnode.name }}/tcp/{{ .Values.ports.p2p }}
{{- range $i := until (min (int .Values.p2p.bootstrapDelegates) (int (include "iotex.delegateReplicas" .)) | int) }}
delegate-{{ $i }} /dns4/{{ $full }}-delegate-{{ $i }}.{{ $dns }}/tcp/{{ $.Values.ports.p2p }}
{{- end }}
{{- end -}}

{{- define "iotex.p2pSecret" -}}{{ .Values.p2p.existingSecret | default (printf "%s-p2p" (include "iotex.fullname" .)) }}{{- end -}}
