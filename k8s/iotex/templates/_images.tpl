{{/* The gateway and injector images are built from this repository (scripts/build-images.sh) and pushed
     to the operator's registry; nobody publishes them. Outside testing, an unset repository fails the
     render with what to set, instead of a cluster of pods in ImagePullBackOff. Included by gateway.yaml
     (and injector.yaml when an injector runs). */}}
{{- define "iotex.validateImage" -}}
{{- $img := index .ctx.Values.images .name -}}
{{- if and (not $img.repository) (ne .ctx.Values.environment "testing") -}}
{{- fail (printf "images.%s.repository is not set: %s needs the iotex-%s image from your registry. Build and push it with `scripts/build-images.sh --registry REGISTRY --push`, then set images.%s.repository=REGISTRY/iotex-%s (and images.%s.tag if not the chart's appVersion %s)." .name .ctx.Values.environment .name .name .name .name .ctx.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
