{{/* Chart name, shortened to a DNS label. */}}
{{- define "kbrackup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "kbrackup.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kbrackup.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kbrackup.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kbrackup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kbrackup.labels" -}}
helm.sh/chart: {{ include "kbrackup.chart" . }}
{{ include "kbrackup.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of one workload: dict "root" $ "component" "backup" "set" "name-or-empty". */}}
{{- define "kbrackup.componentLabels" -}}
{{ include "kbrackup.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- if .set }}
kbrackup.io/backup-set: {{ .set }}
{{- end }}
{{- end }}

{{- define "kbrackup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kbrackup.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kbrackup.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Deep merge of two maps as JSON: list DEFAULTS OVERRIDES; maps merge, everything else replaces. */}}
{{- define "kbrackup.merge" -}}
{{- $out := deepCopy (index . 0) }}
{{- range $k, $v := index . 1 }}
{{- if and (kindIs "map" $v) (kindIs "map" (get $out $k)) }}
{{- $_ := set $out $k (include "kbrackup.merge" (list (get $out $k) $v) | fromJson) }}
{{- else }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The settings of one backup set (or of none, for dict) merged over the chart-wide defaults, as JSON. */}}
{{- define "kbrackup.settings" -}}
{{- $defaults := pick .root.Values "repository" "schedule" "timeZone" "suspend" "path" "tags" "exclude" "startingDeadlineSeconds" "successfulJobsHistoryLimit" "failedJobsHistoryLimit" "backoffLimit" "activeDeadlineSeconds" "terminationGracePeriodSeconds" "temp" "resources" "nodeOptions" "podSecurityContext" "securityContext" "nodeSelector" "tolerations" "affinity" "priorityClassName" "podAnnotations" "podLabels" "extraEnv" "extraVolumes" "extraVolumeMounts" "extraArgs" "logLevel" "lease" "metrics" }}
{{- include "kbrackup.merge" (list $defaults .set) }}
{{- end }}

{{/* The repository URL of merged settings: url, or the mount path of a repository PVC. */}}
{{- define "kbrackup.repositoryUrl" -}}
{{- $repo := .repository }}
{{- if $repo.url }}
{{- $repo.url }}
{{- else if $repo.persistentVolumeClaim }}
{{- $repo.mountPath }}
{{- else }}
{{- required "repository.url (or repository.persistentVolumeClaim) is required" "" }}
{{- end }}
{{- end }}

{{/* Environment shared by every kbrackup container: dict "root" $ "s" SETTINGS "credentials" BOOL "component" NAME "cronjob" NAME. */}}
{{- define "kbrackup.env" -}}
{{- $s := .s }}
{{- $repo := $s.repository -}}
- name: KBRACKUP_REPO
  value: {{ include "kbrackup.repositoryUrl" $s | quote }}
{{- if .credentials }}
- name: KBRACKUP_CREDENTIALS
  value: /etc/kbrackup/credentials/{{ $repo.credentials.key }}
{{- end }}
- name: KBRACKUP_TEMP_DIR
  value: /tmp/kbrackup
- name: KBRACKUP_TEMP_LIMIT
  value: {{ default $s.temp.sizeLimit $s.temp.limit | quote }}
- name: KBRACKUP_LOG_LEVEL
  value: {{ $s.logLevel | quote }}
- name: KBRACKUP_KUBERNETES
  value: {{ .root.Values.kubernetesIntegration | quote }}
- name: KBRACKUP_LEASE_WAIT
  value: {{ $s.lease.waitSeconds | toString | quote }}
- name: KBRACKUP_LEASE_DURATION
  value: {{ $s.lease.durationSeconds | toString | quote }}
{{- with $s.nodeOptions }}
- name: NODE_OPTIONS
  value: {{ . | quote }}
{{- end }}
{{- with $s.metrics.pushgatewayUrl }}
- name: KBRACKUP_PUSHGATEWAY_URL
  value: {{ . | quote }}
{{- end }}
{{- with $repo.s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $repo.s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- if $repo.s3.forcePathStyle }}
- name: KBRACKUP_S3_FORCE_PATH_STYLE
  value: "true"
{{- end }}
{{- with $repo.s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $repo.s3.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $repo.s3.secretAccessKeyKey }}
{{- end }}
{{- if $repo.sftp.existingSecret }}
- name: KBRACKUP_SFTP_KEY
  value: /etc/kbrackup/sftp/{{ $repo.sftp.privateKeyKey }}
- name: KBRACKUP_SFTP_KNOWN_HOSTS
  value: /etc/kbrackup/sftp/{{ $repo.sftp.knownHostsKey }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
{{- if ne .component "test" }}
- name: JOB_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['batch.kubernetes.io/job-name']
- name: JOB_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['batch.kubernetes.io/controller-uid']
{{- end }}
{{- with .cronjob }}
- name: CRONJOB_NAME
  value: {{ . }}
{{- end }}
{{- with $s.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes every kbrackup pod has: temp emptyDir, repository Secrets, repository PVC. Same dict as kbrackup.env. */}}
{{- define "kbrackup.volumes" -}}
{{- $s := .s }}
{{- $repo := $s.repository -}}
- name: temp
  emptyDir:
    sizeLimit: {{ $s.temp.sizeLimit }}
    {{- with $s.temp.medium }}
    medium: {{ . }}
    {{- end }}
{{- if .credentials }}
- name: credentials
  secret:
    secretName: {{ required "repository.credentials.existingSecret is required: a Secret holding the file written by `kbrackup init --credentials-out`" $repo.credentials.existingSecret }}
    defaultMode: 0444
    items:
      - key: {{ $repo.credentials.key }}
        path: {{ $repo.credentials.key }}
{{- end }}
{{- with $repo.sftp.existingSecret }}
- name: sftp
  secret:
    secretName: {{ . }}
    defaultMode: 0444
    items:
      - key: {{ $repo.sftp.privateKeyKey }}
        path: {{ $repo.sftp.privateKeyKey }}
      - key: {{ $repo.sftp.knownHostsKey }}
        path: {{ $repo.sftp.knownHostsKey }}
{{- end }}
{{- with $repo.persistentVolumeClaim }}
- name: repository
  persistentVolumeClaim:
    claimName: {{ . }}
{{- end }}
{{- with $s.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Mounts matching kbrackup.volumes. The repository PVC is writable only for backups (readOnly otherwise). */}}
{{- define "kbrackup.volumeMounts" -}}
{{- $s := .s }}
{{- $repo := $s.repository -}}
- name: temp
  mountPath: /tmp/kbrackup
{{- if .credentials }}
- name: credentials
  mountPath: /etc/kbrackup/credentials
  readOnly: true
{{- end }}
{{- if $repo.sftp.existingSecret }}
- name: sftp
  mountPath: /etc/kbrackup/sftp
  readOnly: true
{{- end }}
{{- if $repo.persistentVolumeClaim }}
- name: repository
  mountPath: {{ $repo.mountPath }}
  readOnly: {{ ne .component "backup" }}
{{- end }}
{{- with $s.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level fields shared by every kbrackup pod: dict "root" $ "s" SETTINGS "component" NAME. */}}
{{- define "kbrackup.podCommon" -}}
{{- $s := .s -}}
serviceAccountName: {{ include "kbrackup.serviceAccountName" .root }}
automountServiceAccountToken: {{ and (ne .root.Values.kubernetesIntegration "off") (ne .component "test") }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $s.podSecurityContext | nindent 2 }}
{{- with $s.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $s.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod template metadata: dict "root" $ "s" SETTINGS "component" NAME "set" NAME. */}}
{{- define "kbrackup.podMetadata" -}}
labels:
  {{- include "kbrackup.componentLabels" . | nindent 2 }}
  {{- with .s.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .s.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
