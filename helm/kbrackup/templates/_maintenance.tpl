{{/*
A maintenance or check CronJob for one repository: dict "root" $ "s" SETTINGS "component" NAME
"cronjob" NAME "args" LIST "env" LIST (of name/value maps) "key" the check.key values (or nothing).
Same pod hardening, temp emptyDir, heap flags, Lease and Events as a backup; no source volumes.
*/}}
{{- define "kbrackup.maintenanceCronJob" -}}
{{- $s := .s }}
{{- $ctx := dict "root" .root "s" $s "credentials" true "component" .component "set" "" "cronjob" .cronjob -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ .cronjob }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "kbrackup.componentLabels" $ctx | nindent 4 }}
spec:
  schedule: {{ $s.schedule | quote }}
  {{- with $s.timeZone }}
  timeZone: {{ . | quote }}
  {{- end }}
  suspend: {{ $s.suspend }}
  # One run at a time: a second would only wait for the first's lock.
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ $s.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ $s.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $s.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "kbrackup.componentLabels" $ctx | nindent 8 }}
      {{- with $s.jobAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      backoffLimit: {{ $s.backoffLimit }}
      activeDeadlineSeconds: {{ $s.activeDeadlineSeconds }}
      {{- with $s.ttlSecondsAfterFinished | toString }}
      ttlSecondsAfterFinished: {{ . }}
      {{- end }}
      podFailurePolicy:
        {{- include "kbrackup.maintenanceFailurePolicy" $s | nindent 8 }}
      template:
        metadata:
          {{- include "kbrackup.podMetadata" $ctx | nindent 10 }}
        spec:
          restartPolicy: Never
          # Time to stop and release the lock and the Lease after SIGTERM; a stop leaves garbage, never a hole.
          terminationGracePeriodSeconds: {{ $s.terminationGracePeriodSeconds }}
          {{- include "kbrackup.podCommon" $ctx | nindent 10 }}
          containers:
            - name: kbrackup
              image: {{ include "kbrackup.image" .root }}
              imagePullPolicy: {{ .root.Values.image.pullPolicy }}
              args: {{ toJson .args }}
              env:
                {{- with .env }}
                {{- toYaml . | nindent 16 }}
                {{- end }}
                {{- include "kbrackup.env" $ctx | nindent 16 }}
              {{- with $s.envFrom }}
              envFrom:
                {{- toYaml . | nindent 16 }}
              {{- end }}
              resources:
                {{- toYaml $s.resources | nindent 16 }}
              securityContext:
                {{- toYaml $s.securityContext | nindent 16 }}
              volumeMounts:
                {{- include "kbrackup.volumeMounts" $ctx | nindent 16 }}
                {{- if .key }}
                - name: key
                  mountPath: /etc/kbrackup/key
                  readOnly: true
                {{- end }}
          volumes:
            {{- include "kbrackup.volumes" $ctx | nindent 12 }}
            {{- with .key }}
            - name: key
              secret:
                secretName: {{ .existingSecret }}
                defaultMode: 0444
            {{- end }}
{{- end }}
