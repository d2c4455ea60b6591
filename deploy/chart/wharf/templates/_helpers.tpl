{{/*
Names, labels, and the one pod template every Wharf process (web, workers, beat, the
migration Job) is built from, so they all get the same settings, secrets and security.
*/}}

{{- define "wharf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wharf.fullname" -}}
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

{{- define "wharf.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component: wharf.selectorLabels (dict "root" $ "component" "web") */}}
{{- define "wharf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wharf.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The label every worker pod (the all-queue worker and each of workers) has and no other pod
has: what the PodMonitor selects. Not in the Deployments' selectors, which are immutable.
*/}}
{{- define "wharf.workerPodLabel" -}}
wharf/worker: "true"
{{- end }}

{{- define "wharf.labels" -}}
helm.sh/chart: {{ include "wharf.chart" .root }}
{{ include "wharf.selectorLabels" . }}
app.kubernetes.io/version: {{ include "wharf.imageTag" .root | quote }}
app.kubernetes.io/part-of: wharf
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "wharf.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "wharf.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "wharf.imageTag" .) }}
{{- end }}

{{/* The Secret this chart makes (keys when there is no existingSecret, URLs, passwords). */}}
{{- define "wharf.secretName" -}}
{{- include "wharf.fullname" . }}
{{- end }}

{{/* The Secret holding Wharf's keys: existingSecret, else the chart's. */}}
{{- define "wharf.keysSecretName" -}}
{{- .Values.existingSecret | default (include "wharf.secretName" .) }}
{{- end }}

{{/* The key names inside the keys Secret: the chart's own Secret always uses the defaults. */}}
{{- define "wharf.keyName" -}}
{{- if .root.Values.existingSecret }}
{{- index .root.Values.secretKeys .key }}
{{- else }}
{{- index (dict "secretKey" "secret-key" "encryptionKeys" "encryption-keys" "adminPassword" "admin-password" "metricsToken" "metrics-token") .key }}
{{- end }}
{{- end }}

{{/*
Where the database URL comes from: "secretUrl" (a key of database.existingSecret), "url"
(database.url, kept in the chart's Secret) or "host" (assembled from host/port/name/user,
the password from a Secret through the env var WHARF_DATABASE_PASSWORD).
*/}}
{{- define "wharf.database.mode" -}}
{{- if and .Values.database.existingSecret .Values.database.existingSecretUrlKey }}secretUrl
{{- else if .Values.database.url }}url
{{- else }}host
{{- end }}
{{- end }}

{{/* In "host" mode: "existing" (database.existingSecret), "chart" (database.password) or "". */}}
{{- define "wharf.database.passwordSource" -}}
{{- if .Values.database.existingSecret }}existing
{{- else if .Values.database.password }}chart
{{- end }}
{{- end }}

{{- define "wharf.redis.mode" -}}
{{- if and .Values.redis.existingSecret .Values.redis.existingSecretUrlKey }}secretUrl
{{- else if .Values.redis.url }}url
{{- else }}host
{{- end }}
{{- end }}

{{- define "wharf.redis.passwordSource" -}}
{{- if .Values.redis.existingSecret }}existing
{{- else if .Values.redis.password }}chart
{{- end }}
{{- end }}

{{/* "true" when the chart must make its own Secret. */}}
{{- define "wharf.secret.needed" -}}
{{- $db := include "wharf.database.mode" . }}
{{- $redis := include "wharf.redis.mode" . }}
{{- if or (not .Values.existingSecret) (eq $db "url") (eq $redis "url") (eq (include "wharf.database.passwordSource" .) "chart") (eq (include "wharf.redis.passwordSource" .) "chart") }}true{{ end }}
{{- end }}

{{- define "wharf.behindTlsProxy" -}}
{{- if kindIs "bool" .Values.wharf.behindTlsProxy }}
{{- ternary "true" "" .Values.wharf.behindTlsProxy }}
{{- else if and .Values.ingress.enabled .Values.ingress.tls }}true
{{- end }}
{{- end }}

{{- define "wharf.allowedHosts" -}}
{{- $hosts := list }}
{{- range .Values.wharf.allowedHosts }}{{ $hosts = append $hosts . }}{{ end }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end }}
{{- end }}
{{- $svc := include "wharf.fullname" . }}
{{- $hosts = concat $hosts (list $svc (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace)) }}
{{- /* The pod's own IP: kubelet probes and Prometheus send it as the Host. */}}
{{- $hosts = append $hosts "$(POD_IP)" }}
{{- $hosts | uniq | join "," }}
{{- end }}

{{- define "wharf.csrfTrustedOrigins" -}}
{{- $origins := list }}
{{- range .Values.wharf.csrfTrustedOrigins }}{{ $origins = append $origins . }}{{ end }}
{{- if and .Values.ingress.enabled (not .Values.wharf.csrfTrustedOrigins) }}
{{- $tlsHosts := list }}
{{- range .Values.ingress.tls }}{{ $tlsHosts = concat $tlsHosts (.hosts | default list) }}{{ end }}
{{- range .Values.ingress.hosts }}
{{- $origins = append $origins (printf "%s://%s" (ternary "https" "http" (has .host $tlsHosts)) .host) }}
{{- end }}
{{- end }}
{{- $origins | uniq | join "," }}
{{- end }}

{{/*
What the pods' settings depend on: their env, and the values the chart's Secret is made
from (its generated keys never change once made, so the values say it all).
*/}}
{{- define "wharf.configChecksum" -}}
{{- $secretInputs := dict "existingSecret" .Values.existingSecret "secretKeys" .Values.secretKeys "secret" .Values.secret "metrics" .Values.metrics.auth "database" .Values.database "redis" .Values.redis }}
{{- print (include "wharf.env" .) (toJson $secretInputs) | sha256sum }}
{{- end }}

{{- define "wharf.secretsDir" -}}/run/secrets/wharf{{- end }}

{{/*
The settings every process gets. Secrets never appear here as values: Wharf reads them
from files (NAME_FILE) of the projected Secret volume, or, for a password put into a URL,
from an env var filled from a Secret.
*/}}
{{- define "wharf.env" -}}
{{- $dir := include "wharf.secretsDir" . -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: DEBUG
  value: "0"
- name: WHARF_VAR_DIR
  value: {{ .Values.wharf.varDir | quote }}
- name: ALLOWED_HOSTS
  value: {{ include "wharf.allowedHosts" . | quote }}
- name: CSRF_TRUSTED_ORIGINS
  value: {{ include "wharf.csrfTrustedOrigins" . | quote }}
- name: WHARF_BEHIND_TLS_PROXY
  value: {{ ternary "1" "0" (eq (include "wharf.behindTlsProxy" .) "true") | quote }}
- name: SECURE_SSL_REDIRECT
  value: {{ ternary "1" "0" .Values.wharf.sslRedirect | quote }}
- name: WHARF_TRUSTED_PROXIES
  value: {{ .Values.wharf.trustedProxies | quote }}
- name: LOG_LEVEL
  value: {{ .Values.wharf.logLevel | quote }}
- name: TIME_ZONE
  value: {{ .Values.wharf.timeZone | quote }}
- name: SECRET_KEY_FILE
  value: {{ $dir }}/secret-key
- name: WHARF_ENCRYPTION_KEYS_FILE
  value: {{ $dir }}/encryption-keys
{{- if .Values.metrics.auth.enabled }}
- name: WHARF_METRICS_TOKEN_FILE
  value: {{ $dir }}/metrics-token
{{- end }}
{{- $db := .Values.database }}
{{- if eq (include "wharf.database.mode" .) "host" }}
{{- $auth := $db.user }}
{{- $pw := include "wharf.database.passwordSource" . }}
{{- if $pw }}
- name: WHARF_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ ternary $db.existingSecret (include "wharf.secretName" .) (eq $pw "existing") }}
      key: {{ ternary $db.existingSecretPasswordKey "database-password" (eq $pw "existing") }}
{{- $auth = printf "%s:$(WHARF_DATABASE_PASSWORD)" $db.user }}
{{- end }}
- name: DATABASE_URL
  value: {{ printf "postgres://%s@%s:%d/%s%s" $auth $db.host (int $db.port) $db.name (ternary (printf "?%s" $db.options) "" (ne $db.options "")) | quote }}
{{- else }}
- name: DATABASE_URL_FILE
  value: {{ $dir }}/database-url
{{- end }}
- name: WHARF_DB_CONN_MAX_AGE
  value: {{ $db.connMaxAge | quote }}
{{- $redis := .Values.redis }}
{{- if eq (include "wharf.redis.mode" .) "host" }}
{{- $auth := "" }}
{{- $pw := include "wharf.redis.passwordSource" . }}
{{- if $pw }}
- name: WHARF_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ ternary $redis.existingSecret (include "wharf.secretName" .) (eq $pw "existing") }}
      key: {{ ternary $redis.existingSecretPasswordKey "redis-password" (eq $pw "existing") }}
{{- $auth = ":$(WHARF_REDIS_PASSWORD)@" }}
{{- end }}
- name: REDIS_URL
  value: {{ printf "%s://%s%s:%d/%d" (ternary "rediss" "redis" $redis.tls) $auth $redis.host (int $redis.port) (int $redis.db) | quote }}
{{- else }}
- name: REDIS_URL_FILE
  value: {{ $dir }}/redis-url
{{- end }}
{{- range $name, $value := .Values.wharf.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .Values.wharf.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The projected Secret volume at /run/secrets/wharf; "adminPassword" adds the first admin's
password (only the migration Job needs it).
*/}}
{{- define "wharf.secretsVolume" -}}
{{- $root := .root -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "wharf.keysSecretName" $root }}
          items:
            - key: {{ include "wharf.keyName" (dict "root" $root "key" "secretKey") }}
              path: secret-key
            - key: {{ include "wharf.keyName" (dict "root" $root "key" "encryptionKeys") }}
              path: encryption-keys
            {{- if .adminPassword }}
            - key: {{ include "wharf.keyName" (dict "root" $root "key" "adminPassword") }}
              path: admin-password
            {{- end }}
            {{- if $root.Values.metrics.auth.enabled }}
            - key: {{ include "wharf.keyName" (dict "root" $root "key" "metricsToken") }}
              path: metrics-token
            {{- end }}
      {{- $db := include "wharf.database.mode" $root }}
      {{- if ne $db "host" }}
      - secret:
          name: {{ ternary $root.Values.database.existingSecret (include "wharf.secretName" $root) (eq $db "secretUrl") }}
          items:
            - key: {{ ternary $root.Values.database.existingSecretUrlKey "database-url" (eq $db "secretUrl") }}
              path: database-url
      {{- end }}
      {{- $redis := include "wharf.redis.mode" $root }}
      {{- if ne $redis "host" }}
      - secret:
          name: {{ ternary $root.Values.redis.existingSecret (include "wharf.secretName" $root) (eq $redis "secretUrl") }}
          items:
            - key: {{ ternary $root.Values.redis.existingSecretUrlKey "redis-url" (eq $redis "secretUrl") }}
              path: redis-url
      {{- end }}
{{- end }}

{{/*
One pod template. Arguments (a dict):
  root       the chart's top-level context
  component  web, worker, worker-<name>, beat, migrate
  spec       that component's values (resources, nodeSelector, podAnnotations, …)
  args       the image's entry point and its arguments
  env        extra env entries for this component (a list)
  web        true: the web port and probes
  worker     true: a Celery worker, whose own /metrics is on the port named metrics
  job        true: the migration Job (restartPolicy Never, migrate first, then the admin)
*/}}
{{- define "wharf.podTemplate" -}}
{{- $root := .root }}
{{- $spec := .spec -}}
metadata:
  labels:
    {{- include "wharf.labels" (dict "root" $root "component" .component) | nindent 4 }}
    {{- if .worker }}
    {{- include "wharf.workerPodLabel" $root | nindent 4 }}
    {{- end }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Pods roll when a setting or the chart's Secret changes.
    checksum/config: {{ include "wharf.configChecksum" $root }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $spec.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.serviceAccountName }}
  serviceAccountName: {{ . }}
  {{- end }}
  automountServiceAccountToken: {{ $root.Values.automountServiceAccountToken }}
  {{- if .job }}
  restartPolicy: Never
  {{- end }}
  terminationGracePeriodSeconds: {{ hasKey $spec "terminationGracePeriodSeconds" | ternary $spec.terminationGracePeriodSeconds 30 }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- if .job }}
  initContainers:
    - name: migrate
      {{- include "wharf.container" (dict "root" $root "spec" $spec "args" (list "migrate") "env" .env) | nindent 6 }}
  {{- end }}
  containers:
    - name: {{ if .job }}admin{{ else }}{{ .component }}{{ end }}
      {{- include "wharf.container" . | nindent 6 }}
  volumes:
    - name: var
      emptyDir: {}
    - name: tmp
      emptyDir: {}
    {{- if or .web .worker }}
    # prometheus-client's multiprocess files: new and empty with each pod.
    - name: metrics
      emptyDir: {}
    {{- end }}
    {{- include "wharf.secretsVolume" (dict "root" $root "adminPassword" .job) | nindent 4 }}
  {{- with $spec.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* One container of the pod template (same arguments). */}}
{{- define "wharf.container" -}}
{{- $root := .root }}
{{- $spec := .spec -}}
image: {{ include "wharf.image" $root | quote }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
args:
  {{- toYaml .args | nindent 2 }}
env:
  {{- include "wharf.env" $root | nindent 2 }}
  {{- if .job }}
  - name: WHARF_ADMIN_PASSWORD_FILE
    value: {{ include "wharf.secretsDir" $root }}/admin-password
  {{- end }}
  {{- with .env }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if .web }}
ports:
  - name: http
    containerPort: {{ $root.Values.web.port }}
    protocol: TCP
{{- $headers := list }}
{{- if eq (include "wharf.behindTlsProxy" $root) "true" }}
{{- /* Else Django would redirect the plain-HTTP probe to HTTPS. */}}
{{- $headers = list (dict "name" "X-Forwarded-Proto" "value" "https") }}
{{- end }}
startupProbe:
  httpGet: {path: /healthz, port: http{{ with $headers }}, httpHeaders: {{ toJson . }}{{ end }}}
  {{- toYaml $spec.startupProbe | nindent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: http{{ with $headers }}, httpHeaders: {{ toJson . }}{{ end }}}
  {{- toYaml $spec.livenessProbe | nindent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: http{{ with $headers }}, httpHeaders: {{ toJson . }}{{ end }}}
  {{- toYaml $spec.readinessProbe | nindent 2 }}
{{- end }}
{{- if .worker }}
ports:
  - name: metrics
    containerPort: {{ $root.Values.metrics.workerPort }}
    protocol: TCP
{{- end }}
securityContext:
  {{- toYaml $root.Values.securityContext | nindent 2 }}
{{- with $spec.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: var
    mountPath: {{ $root.Values.wharf.varDir }}
  - name: tmp
    mountPath: /tmp
  - name: secrets
    mountPath: {{ include "wharf.secretsDir" $root }}
    readOnly: true
  {{- if or .web .worker }}
  - name: metrics
    mountPath: {{ $root.Values.metrics.multiprocDir }}
  {{- end }}
{{- end }}
