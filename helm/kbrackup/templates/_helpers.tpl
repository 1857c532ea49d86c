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
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
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

{{/* registry/repository, then @digest when pinned, else :tag (default the appVersion). */}}
{{- define "kbrackup.image" -}}
{{- $i := .Values.image }}
{{- $name := $i.repository }}
{{- if $i.registry }}
{{- $name = printf "%s/%s" $i.registry $i.repository }}
{{- end }}
{{- if $i.digest }}
{{- printf "%s@%s" $name $i.digest }}
{{- else }}
{{- printf "%s:%s" $name (default .Chart.AppVersion $i.tag) }}
{{- end }}
{{- end }}

{{/* A memory quantity (64Mi, 1Gi, 128M, 134217728) in whole MiB; anything else stops rendering. */}}
{{- define "kbrackup.mebibytes" -}}
{{- $q := toString . | trim }}
{{- $number := regexFind "^[0-9]+([.][0-9]+)?" $q }}
{{- $unit := trimPrefix $number $q }}
{{- $factors := dict "" 1.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 }}
{{- if or (not $number) (not (hasKey $factors $unit)) }}
{{- fail (printf "%q is not a memory quantity such as 64Mi, 1Gi or 128M" $q) }}
{{- end }}
{{- divf (mulf (float64 $number) (get $factors $unit)) 1048576.0 | floor | int64 }}
{{- end }}

{{/* NODE_OPTIONS of merged settings: the heap flags (the old space derived from the memory limit unless set), then nodeOptions. */}}
{{- define "kbrackup.nodeOptions" -}}
{{- $flags := list }}
{{- $old := toString .heap.maxOldSpaceMiB }}
{{- $limit := dig "limits" "memory" "" .resources }}
{{- if and (not $old) $limit }}
{{- $old = toString (div (mul (include "kbrackup.mebibytes" $limit | atoi) 3) 8) }}
{{- end }}
{{- with $old }}
{{- $flags = append $flags (printf "--max-old-space-size=%s" .) }}
{{- end }}
{{- with .heap.maxSemiSpaceMiB }}
{{- $flags = append $flags (printf "--max-semi-space-size=%v" .) }}
{{- end }}
{{- with .nodeOptions }}
{{- $flags = append $flags . }}
{{- end }}
{{- join " " $flags }}
{{- end }}

{{/* A repository URL as the job shows and hashes it: no password, query or fragment, no trailing slash (as src/observe/repository-label.ts). */}}
{{- define "kbrackup.redactedUrl" -}}
{{- $u := trim . }}
{{- if regexMatch "^[a-zA-Z][a-zA-Z0-9+.-]*://" $u }}
{{- $u = regexReplaceAll "[?#].*$" $u "" }}
{{- $u = regexReplaceAll "^([a-zA-Z][a-zA-Z0-9+.-]*://[^:@/]*):[^@/]*@" $u "${1}@" }}
{{- $u = trimSuffix "/" $u }}
{{- end }}
{{- $u }}
{{- end }}

{{/* The Lease a backup to this repository URL holds (src/k8s/lease.ts leaseName). */}}
{{- define "kbrackup.leaseName" -}}
{{- printf "kbrackup-%s" (include "kbrackup.redactedUrl" . | sha256sum | trunc 16) }}
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
{{- $defaults := pick .root.Values "repository" "schedule" "timeZone" "suspend" "path" "tags" "exclude" "startingDeadlineSeconds" "successfulJobsHistoryLimit" "failedJobsHistoryLimit" "backoffLimit" "activeDeadlineSeconds" "ttlSecondsAfterFinished" "terminationGracePeriodSeconds" "partialIsFailure" "jobAnnotations" "temp" "resources" "heap" "nodeOptions" "podSecurityContext" "securityContext" "nodeSelector" "tolerations" "affinity" "colocateWith" "priorityClassName" "podAnnotations" "podLabels" "extraEnv" "envFrom" "extraVolumes" "extraVolumeMounts" "extraArgs" "logLevel" "lease" "metrics" }}
{{- $s := include "kbrackup.merge" (list $defaults .set) | fromJson }}
{{- $size := include "kbrackup.mebibytes" $s.temp.sizeLimit | atoi }}
{{- if $s.temp.limit }}
{{- if ge (include "kbrackup.mebibytes" $s.temp.limit | atoi) $size }}
{{- fail (printf "temp.limit %s must be below temp.sizeLimit %s: the on-disk chunk index and file lists live in the emptyDir too, outside the budget, and the kubelet evicts a pod whose emptyDir outgrows its sizeLimit" $s.temp.limit $s.temp.sizeLimit) }}
{{- end }}
{{- else }}
{{- $_ := set $s.temp "limit" (printf "%dMi" (div (mul $size 3) 4)) }}
{{- end }}
{{- if and (not $s.temp.medium) (not (dig "requests" "ephemeral-storage" "" $s.resources)) }}
{{- $_ := set $s.resources "requests" (merge (dict "ephemeral-storage" $s.temp.sizeLimit) (dig "requests" dict $s.resources)) }}
{{- end }}
{{- toJson $s }}
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
  value: {{ $s.temp.limit | quote }}
- name: KBRACKUP_LOG_LEVEL
  value: {{ $s.logLevel | quote }}
- name: KBRACKUP_KUBERNETES
  value: {{ and .root.Values.kubernetesIntegration (eq (include "kbrackup.holdsLease" .component) "true") | ternary "auto" "off" | quote }}
{{- if eq .component "backup" }}
- name: KBRACKUP_PARTIAL_EXIT_CODE
  value: {{ $s.partialIsFailure | ternary "3" "0" | quote }}
{{- end }}
- name: KBRACKUP_LEASE_WAIT
  value: {{ $s.lease.waitSeconds | toString | quote }}
- name: KBRACKUP_LEASE_DURATION
  value: {{ $s.lease.durationSeconds | toString | quote }}
{{- with include "kbrackup.nodeOptions" $s }}
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
{{- with $repo.s3.storageClass }}
- name: KBRACKUP_S3_STORAGE_CLASS
  value: {{ . | quote }}
{{- end }}
{{- with $repo.s3.sse }}
- name: KBRACKUP_S3_SSE
  value: {{ . | quote }}
{{- end }}
{{- with $repo.s3.sseKmsKeyId }}
- name: KBRACKUP_S3_SSE_KMS_KEY_ID
  value: {{ . | quote }}
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
{{- if not $repo.sftp.hostFingerprint }}
- name: KBRACKUP_SFTP_KNOWN_HOSTS
  value: /etc/kbrackup/sftp/{{ $repo.sftp.knownHostsKey }}
{{- end }}
{{- end }}
{{- with $repo.sftp.hostFingerprint }}
- name: KBRACKUP_SFTP_HOST_FINGERPRINT
  value: {{ . | quote }}
{{- end }}
{{ include "kbrackup.identityEnv" . }}
{{- with $s.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* What a pod knows about itself (downward API): names Events, the Lease holder, the snapshot pod's objects. */}}
{{- define "kbrackup.identityEnv" -}}
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
{{- if has .component (list "backup" "snapshot" "restore" "maintenance" "check") }}
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
      {{- if not $repo.sftp.hostFingerprint }}
      - key: {{ $repo.sftp.knownHostsKey }}
        path: {{ $repo.sftp.knownHostsKey }}
      {{- end }}
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

{{/* Mounts matching kbrackup.volumes. The repository PVC is writable only for the pods that write (backup; maintenance and check take locks). */}}
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
  readOnly: {{ not (eq (include "kbrackup.holdsLease" .component) "true") }}
{{- end }}
{{- with $s.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level fields shared by every kbrackup pod: dict "root" $ "s" SETTINGS "component" NAME. */}}
{{- define "kbrackup.podCommon" -}}
{{- $s := .s -}}
serviceAccountName: {{ .serviceAccount | default (include "kbrackup.serviceAccountName" .root) }}
{{- /* Only pods that call the API get a token: backup and maintenance (Events, Lease) and snapshot pods. */}}
automountServiceAccountToken: {{ or (and .root.Values.kubernetesIntegration (eq (include "kbrackup.holdsLease" .component) "true")) (eq .component "snapshot") }}
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
{{- $affinity := deepCopy $s.affinity }}
{{- if and $s.colocateWith (eq .component "backup") }}
{{- $term := dict "labelSelector" (dict "matchLabels" $s.colocateWith) "topologyKey" "kubernetes.io/hostname" }}
{{- $pod := get $affinity "podAffinity" | default dict }}
{{- $_ := set $pod "requiredDuringSchedulingIgnoredDuringExecution" (append (get $pod "requiredDuringSchedulingIgnoredDuringExecution" | default list) $term) }}
{{- $_ := set $affinity "podAffinity" $pod }}
{{- end }}
{{- with $affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod metadata: dict "root" $ "s" SETTINGS "component" NAME "set" NAME, and "annotations" of its own (hooks). */}}
{{- define "kbrackup.podMetadata" -}}
labels:
  {{- include "kbrackup.componentLabels" . | nindent 2 }}
  {{- with .s.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with merge (deepCopy (.annotations | default dict)) (.s.podAnnotations | default dict) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
podFailurePolicy of backup Jobs: fail at once where a retry cannot help (10 no repository, 12 wrong
key, and 3 partial when partialIsFailure: a retry only writes a second partial snapshot), ignore pod
disruptions (drain, preemption: the run is repeated), count the rest (1, 11 Lease wait, 143) against backoffLimit.
*/}}
{{- define "kbrackup.podFailurePolicy" -}}
rules:
  - action: FailJob
    onExitCodes:
      containerName: kbrackup
      operator: In
      values: {{ .partialIsFailure | ternary (list 3 10 12) (list 10 12) | toJson }}
  - action: Ignore
    onPodConditions:
      - type: DisruptionTarget
        status: "True"
{{- end }}

{{/* Stop rendering on names used twice: sets would share a CronJob, sources a volume. */}}
{{- define "kbrackup.checkNames" -}}
{{- $sets := dict }}
{{- range .Values.backups }}
{{- if hasKey $sets .name }}
{{- fail (printf "backups: the set name %q is used twice; each set is its own CronJob and snapshot source" .name) }}
{{- end }}
{{- $_ := set $sets .name true }}
{{- $set := .name }}
{{- $sources := dict }}
{{- range .sources }}
{{- if hasKey $sources .name }}
{{- fail (printf "backup set %q: the source name %q is used twice; each source is a volume of its own" $set .name) }}
{{- end }}
{{- $_ := set $sources .name true }}
{{- end }}
{{- end }}
{{- end }}

{{/* Whether pods of this component write to the repository and hold its Lease ("true" or ""): backups, and maintenance and check, which lock it. */}}
{{- define "kbrackup.holdsLease" -}}
{{- if has . (list "backup" "maintenance" "check") }}true{{ end }}
{{- end }}

{{/*
The repositories the backup sets write to, as JSON: URL → the repository settings of the first set
that writes there (maintenance and check run once per repository, not per set).
*/}}
{{- define "kbrackup.repositories" -}}
{{- $repos := dict }}
{{- range .Values.backups }}
{{- $s := include "kbrackup.settings" (dict "root" $ "set" .) | fromJson }}
{{- $url := include "kbrackup.repositoryUrl" $s }}
{{- if not (hasKey $repos $url) }}
{{- $_ := set $repos $url $s.repository }}
{{- end }}
{{- end }}
{{- toJson $repos }}
{{- end }}

{{/*
Settings of a maintenance or check CronJob: dict "root" $ "repository" REPO "job" (.Values.maintenance
or .Values.check). The chart-wide defaults, the repository of the sets that write there, then the job's
own temp, resources and Job fields.
*/}}
{{- define "kbrackup.jobSettings" -}}
{{- $s := include "kbrackup.settings" (dict "root" .root "set" (dict "repository" .repository "temp" (merge (dict "limit" "") (pick .job.temp "sizeLimit")))) | fromJson }}
{{- $s = include "kbrackup.merge" (list $s (pick .job "resources" "activeDeadlineSeconds" "ttlSecondsAfterFinished" "schedule" "timeZone" "suspend")) | fromJson }}
{{- if hasKey .job "backoffLimit" }}
{{- $_ := set $s "backoffLimit" .job.backoffLimit }}
{{- end }}
{{- /* Colocation is for reaching a backup set's volumes; maintenance reads none. */}}
{{- $_ := set $s "colocateWith" dict }}
{{- toJson $s }}
{{- end }}

{{/* The name of a per-repository CronJob: <fullname>-<what>, with a hash of the URL when the sets write to several repositories. */}}
{{- define "kbrackup.repositoryJobName" -}}
{{- $base := printf "%s-%s" (include "kbrackup.fullname" .root) .what }}
{{- if gt .count 1 }}
{{- printf "%s-%s" ($base | trunc 43 | trimSuffix "-") (include "kbrackup.redactedUrl" .url | sha256sum | trunc 8) }}
{{- else }}
{{- $base | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* podFailurePolicy of maintenance and check Jobs: no retry where it cannot help (10 no repository, 12 wrong key), none for pod disruptions. */}}
{{- define "kbrackup.maintenanceFailurePolicy" -}}
rules:
  - action: FailJob
    onExitCodes:
      containerName: kbrackup
      operator: In
      values: [10, 12]
  - action: Ignore
    onPodConditions:
      - type: DisruptionTarget
        status: "True"
{{- end }}
