{{/* Environment of every bootnode-scale.sh container (backup job, backup guard). */}}
{{- define "iotex.bootnodeScaleEnv" -}}
- {name: BOOTNODE_STS, value: {{ include "iotex.bootnodeSts" . }}}
- {name: LEASE, value: {{ include "iotex.fullname" . }}-backup}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- {name: HOME, value: /tmp}
{{- end -}}

{{/* MiB in a quantity with one binary unit (512Mi, 100Gi, 1Ti); 0 for anything else. */}}
{{- define "iotex.mib" -}}
{{- $q := toString . -}}
{{- if regexMatch "^[0-9]+Mi$" $q -}}{{ trimSuffix "Mi" $q | int64 }}
{{- else if regexMatch "^[0-9]+Gi$" $q -}}{{ mul (trimSuffix "Gi" $q | int64) 1024 }}
{{- else if regexMatch "^[0-9]+Ti$" $q -}}{{ mul (trimSuffix "Ti" $q | int64) 1048576 }}
{{- else -}}0
{{- end -}}
{{- end -}}

{{/* S3 multipart chunk (MiB) for the streamed backup upload. A stream of unknown size is cut into chunks
     and S3 takes at most 10,000 parts, so rclone's default 5 MiB caps a backup at 48.8 GiB. Auto: the
     smallest power of two >= 8 MiB with 10,000 chunks >= 1.1 x bootnode.storage.size (a full volume, plus
     gzip's worst case on incompressible data): 50Gi -> 8 MiB, 200Gi -> 32 MiB, 500Gi -> 64 MiB. */}}
{{- define "iotex.s3ChunkMiB" -}}
{{- $set := .Values.backup.s3.chunkSize -}}
{{- if $set -}}{{ include "iotex.mib" $set }}
{{- else -}}
{{- $need := div (mul (include "iotex.mib" .Values.bootnode.storage.size | int64) 11) 100000 | add1 -}}
{{- $chunk := 8 -}}
{{- range $p := list 8 16 32 64 128 256 512 1024 2048 4096 -}}
{{- if and (lt (int64 $chunk) (int64 $need)) (ge (int64 $p) (int64 $need)) -}}{{- $chunk = $p -}}{{- end -}}
{{- end -}}
{{ $chunk }}
{{- end -}}
{{- end -}}

{{/* rclone settings of the backup upload, and the render-time checks that it can hold a full volume and
     that its buffers (chunk x concurrency, held in memory while parts upload) fit the memory limit. */}}
{{- define "iotex.s3UploadEnv" -}}
{{- $chunk := include "iotex.s3ChunkMiB" . | int64 -}}
{{- $conc := .Values.backup.s3.uploadConcurrency | int64 -}}
{{- $volume := include "iotex.mib" .Values.bootnode.storage.size | int64 -}}
{{- if or (lt $chunk 5) (gt $chunk 5120) -}}
{{- fail (printf "backup.s3.chunkSize %q: use 5Mi to 5Gi (S3's part size limits)" .Values.backup.s3.chunkSize) -}}
{{- end -}}
{{- if lt (mul $chunk 10000) $volume -}}
{{- fail (printf "backup.s3.chunkSize %q: 10,000 parts of it hold %d MiB, less than bootnode.storage.size %s; leave it empty to size it from the volume" .Values.backup.s3.chunkSize (mul $chunk 10000) .Values.bootnode.storage.size) -}}
{{- end -}}
{{- $limit := include "iotex.mib" (dig "limits" "memory" "" .Values.backup.resources) | int64 -}}
{{- if and (gt $limit 0) (gt (add (mul $chunk $conc) 128) $limit) -}}
{{- fail (printf "backup: %d MiB chunks x %d uploads in flight need %d MiB of buffers + ~128 MiB for rclone, more than backup.resources.limits.memory %s; raise it or lower backup.s3.uploadConcurrency" $chunk $conc (mul $chunk $conc) (dig "limits" "memory" "" .Values.backup.resources)) -}}
{{- end -}}
- {name: RCLONE_S3_CHUNK_SIZE, value: {{ printf "%dMi" $chunk | quote }}}
- {name: RCLONE_S3_UPLOAD_CONCURRENCY, value: {{ $conc | quote }}}
{{- end -}}
