{{/* Injector pod: (dict "ctx" $ "rate" R "duration" D "steps" S). Keys come from the injector Secret as env. */}}
{{- define "iotex.injectorPod" -}}
{{- $ := .ctx -}}
{{- $inj := $.Values.injector -}}
{{- $run := $inj.run -}}
{{- $secret := include "iotex.injectorSecret" $ -}}
metadata:
  labels:
    {{- include "iotex.selectorLabels" (dict "ctx" $ "component" "injector") | nindent 4 }}
    iotex.io/rpc-client: "true"
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    {{- include "iotex.podSecurityContext" $ | nindent 4 }}
  {{- with $.Values.imagePullSecrets }}
  imagePullSecrets: {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
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
        {{- with $inj.fundAmount }}
        - --fund-amount={{ . }}
        {{- end }}
        - --chain-id={{ $.Values.chain.evmChainId }}
        - --metrics-listen=0.0.0.0:{{ $inj.metricsPort }}
        - --report=/reports/report.json
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
        - name: IOTEX_INJECTOR_FUND_FROM
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: fund-from, optional: true}}
        - name: IOTEX_INJECTOR_AUTH_TOKEN
          valueFrom: {secretKeyRef: {name: {{ $secret }}, key: auth-token, optional: true}}
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
  volumes:
    - name: reports
      emptyDir: {sizeLimit: 256Mi}
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
    {{- if eq $inj.keyMode "keysFile" }}
    - name: keys
      secret: {secretName: {{ $secret }}, defaultMode: 0440, items: [{key: keys-file, path: keys-file}]}
    {{- end }}
{{- end -}}
