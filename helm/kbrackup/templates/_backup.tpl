{{/*
The spec of one backup Job: dict "root" $ "s" SETTINGS "backup" SET "cronjob" NAME, plus the keys
kbrackup.env needs. The CronJob of a plain set runs it directly; for a set with volumeSnapshot sources
it goes into the snapshot plan, and the snapshot pod creates it with clones in place of those volumes.
*/}}
{{- define "kbrackup.backupJobSpec" -}}
{{- $s := .s }}
{{- $backup := .backup }}
{{- $root := trimSuffix "/" $s.path -}}
backoffLimit: {{ $s.backoffLimit }}
activeDeadlineSeconds: {{ $s.activeDeadlineSeconds }}
{{- with $s.ttlSecondsAfterFinished | toString }}
ttlSecondsAfterFinished: {{ . }}
{{- end }}
podFailurePolicy:
  {{- include "kbrackup.podFailurePolicy" $s | nindent 2 }}
template:
  metadata:
    {{- include "kbrackup.podMetadata" . | nindent 4 }}
  spec:
    restartPolicy: Never
    terminationGracePeriodSeconds: {{ $s.terminationGracePeriodSeconds }}
    {{- include "kbrackup.podCommon" . | nindent 4 }}
    containers:
      - name: kbrackup
        image: {{ include "kbrackup.image" .root }}
        imagePullPolicy: {{ .root.Values.image.pullPolicy }}
        args:
          - backup
          {{- range $s.extraArgs }}
          - {{ . | quote }}
          {{- end }}
          - {{ $root | quote }}
        env:
          - name: KBRACKUP_SOURCE
            value: {{ $backup.name | quote }}
          {{- with $s.tags }}
          - name: KBRACKUP_TAGS
            value: {{ join "," . | quote }}
          {{- end }}
          {{- with $s.exclude }}
          - name: KBRACKUP_EXCLUDE
            value: {{ join "," . | quote }}
          {{- end }}
          {{- include "kbrackup.env" . | nindent 10 }}
        {{- with $s.envFrom }}
        envFrom:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        resources:
          {{- toYaml $s.resources | nindent 10 }}
        securityContext:
          {{- toYaml $s.securityContext | nindent 10 }}
        volumeMounts:
          {{- include "kbrackup.volumeMounts" . | nindent 10 }}
          {{- range $backup.sources }}
          {{- $mountPath := default (printf "%s/%s" $root .name) .mountPath }}
          {{- if not (hasPrefix (printf "%s/" $root) $mountPath) }}
          {{- fail (printf "source %q of backup set %q is mounted at %s, outside of the backed-up path %s" .name $backup.name $mountPath $root) }}
          {{- end }}
          - name: source-{{ .name }}
            mountPath: {{ $mountPath }}
            readOnly: true
            {{- with .subPath }}
            subPath: {{ . }}
            {{- end }}
          {{- end }}
    volumes:
      {{- include "kbrackup.volumes" . | nindent 6 }}
      {{- range $backup.sources }}
      - name: source-{{ .name }}
        {{- if .persistentVolumeClaim }}
        persistentVolumeClaim:
          claimName: {{ .persistentVolumeClaim }}
          readOnly: true
        {{- else if .volumeSnapshot }}
        # Replaced by the clone of a fresh snapshot of this PVC when the snapshot pod creates the Job.
        persistentVolumeClaim:
          claimName: {{ required (printf "source %q of backup set %q: volumeSnapshot.persistentVolumeClaim is required" .name $backup.name) .volumeSnapshot.persistentVolumeClaim }}
          readOnly: true
        {{- else if .hostPath }}
        hostPath:
          path: {{ .hostPath }}
          type: Directory
        {{- else }}
        {{- fail (printf "source %q of backup set %q needs persistentVolumeClaim, volumeSnapshot or hostPath" .name $backup.name) }}
        {{- end }}
      {{- end }}
{{- end }}

{{/* Whether a set has volumeSnapshot sources ("true" or ""). */}}
{{- define "kbrackup.usesSnapshots" -}}
{{- range .sources }}{{ if .volumeSnapshot }}true{{ end }}{{ end }}
{{- end }}

{{/* The ServiceAccount of snapshot pods: it may create snapshots, PVCs and Jobs, so it is not the backup pods'. */}}
{{- define "kbrackup.snapshotServiceAccountName" -}}
{{- printf "%s-snapshot" (include "kbrackup.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}
