{{/* Upgrade guards: changes a running release must not make by `helm upgrade`, refused at render time with
     what to do instead. They read the live objects with `lookup`, so they act on `helm upgrade` (and
     `helm install` over leftovers) against a cluster; `helm template` and `helm lint` see no cluster and
     skip them. Included by nodes.yaml. */}}
{{- define "iotex.upgradeGuards" -}}
{{- $full := include "iotex.fullname" . -}}
{{- $ns := .Release.Namespace -}}

{{- /* Genesis: a chain cannot change its genesis block (size, timestamp, delegates, balances, ...). Nodes
     would start with databases of the old chain, and delegates would restore the old chain from S3. */ -}}
{{- $live := lookup "v1" "ConfigMap" $ns (printf "%s-node-config" $full) -}}
{{- $liveGenesis := dig "data" "genesis.yaml" "" $live -}}
{{- if $liveGenesis -}}
{{- $rendered := include (print .Template.BasePath "/node-configmap.yaml") . | fromYaml -}}
{{- $newGenesis := dig "data" "genesis.yaml" "" $rendered -}}
{{- if and $newGenesis (ne $liveGenesis $newGenesis) -}}
{{- fail (printf `genesis change refused: release %q in namespace %q runs a chain whose genesis differs from the one these values render (genesis.*, size or the delegate list changed). A running chain cannot change its genesis. To start a NEW chain on purpose, deleting this one:
  1. helm uninstall %s -n %s
  2. kubectl -n %s delete pvc data-%s-0        (the boot node's chain data)
  3. rclone purge s3:%s/%s/%s                  (its backups: delegates would restore the old chain)
  4. helm install again with the new values.
Otherwise put the previous genesis values back.` .Release.Name $ns .Release.Name $ns $ns (include "iotex.bootnodeSts" .) .Values.backup.s3.bucket .Values.backup.s3.prefix .Release.Name) -}}
{{- end -}}
{{- end -}}

{{- /* Boot-node storage: a StatefulSet's volumeClaimTemplates are immutable, so the API server would refuse
     the upgrade with a bare "Forbidden: updates to statefulset spec ... are forbidden". */ -}}
{{- $sts := lookup "apps/v1" "StatefulSet" $ns (include "iotex.bootnodeSts" .) -}}
{{- range (dig "spec" "volumeClaimTemplates" list $sts) -}}
{{- if eq (dig "metadata" "name" "" .) "data" -}}
{{- $liveSize := dig "spec" "resources" "requests" "storage" "" . -}}
{{- if and $liveSize (ne (include "iotex.mib" $liveSize) (include "iotex.mib" $.Values.bootnode.storage.size)) -}}
{{- fail (printf `bootnode.storage.size cannot change from %s to %s by helm upgrade: the boot node's StatefulSet keeps its volume claim template (Kubernetes forbids changing it), and the delegates' emptyDir size follows the same value. To grow the volume (its StorageClass must allow expansion):
  1. kubectl -n %s patch pvc data-%s-0 -p '{"spec":{"resources":{"requests":{"storage":"%s"}}}}'
  2. kubectl -n %s delete statefulset %s --cascade=orphan   (the pod and its volume keep running)
  3. run this helm upgrade again: it recreates the StatefulSet with the new size and adopts the pod.
A volume cannot shrink: to keep the current size, set bootnode.storage.size=%s.` $liveSize $.Values.bootnode.storage.size $ns (include "iotex.bootnodeSts" $) $.Values.bootnode.storage.size $ns (include "iotex.bootnodeSts" $) $liveSize) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
