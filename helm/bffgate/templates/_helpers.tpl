{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "bffgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the admin Service appends "-admin", so keep room for it. */}}
{{- define "bffgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "bffgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bffgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bffgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bffgate.labels" -}}
helm.sh/chart: {{ include "bffgate.chart" . }}
{{ include "bffgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bffgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bffgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bffgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret the gateway's secrets come from: yours (existingSecret) or the chart's. */}}
{{- define "bffgate.secretName" -}}
{{- default (include "bffgate.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
Key of one secret inside that Secret, or "" when it is not provided. The chart's own
Secret uses the key names of existingSecretKeys' defaults and holds only what is set.
*/}}
{{- define "bffgate.secretKey" -}}
{{- $root := index . 0 }}{{ $item := index . 1 }}
{{- $defaults := dict "oidc_client_secret" "oidc-client-secret" "oidc_private_key" "oidc-private-key" "cookie_secret_keys" "cookie-secret-keys" "admin_token" "admin-token" "redis_url" "redis-url" "redis_sentinel_password" "redis-sentinel-password" }}
{{- if $root.Values.existingSecret }}
{{- index $root.Values.existingSecretKeys $item | default "" }}
{{- else if index $root.Values.secrets $item }}
{{- index $defaults $item }}
{{- end }}
{{- end }}

{{/* Environment variable that carries each secret into the gateway. */}}
{{- define "bffgate.secretEnv" -}}
{{- $vars := dict "oidc_client_secret" "BFFGATE_OIDC__CLIENT_SECRET" "oidc_private_key" "BFFGATE_OIDC__PRIVATE_KEY" "cookie_secret_keys" "BFFGATE_COOKIE__SECRET_KEYS" "admin_token" "BFFGATE_SERVER__ADMIN_TOKEN" "redis_url" "BFFGATE_REDIS__URL" "redis_sentinel_password" "REDIS_SENTINEL_PASSWORD" }}
{{- index $vars . }}
{{- end }}

{{/* One TOML value: JSON strings, numbers, booleans and arrays of them are valid TOML. */}}
{{- define "bffgate.tomlValue" -}}
{{- toJson . }}
{{- end }}

{{/*
A TOML table from a values section: scalars and lists first, then nested tables.
Null values are left out, so the gateway's own default applies.
*/}}
{{- define "bffgate.tomlTable" -}}
{{- $name := index . 0 }}{{ $data := index . 1 }}{{ $fixed := index . 2 -}}
[{{ $name }}]
{{- range $k, $v := $fixed }}
{{ $k }} = {{ include "bffgate.tomlValue" $v }}
{{- end }}
{{- range $k, $v := $data }}
{{- if and (not (kindIs "map" $v)) (not (kindIs "invalid" $v)) (not (hasKey $fixed $k)) }}
{{ $k }} = {{ include "bffgate.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $data }}
{{- if and (kindIs "map" $v) $v }}

[{{ $name }}.{{ $k }}]
{{- range $kk, $vv := $v }}
{{- if not (kindIs "invalid" $vv) }}
{{ toJson $kk }} = {{ include "bffgate.tomlValue" $vv }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Cross-field checks values.schema.json cannot express. */}}
{{- define "bffgate.validate" -}}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be >= autoscaling.minReplicas" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) (not .Values.autoscaling.enabled) (not .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget.minAvailable must be below replicaCount, or no node could ever be drained" }}
{{- end }}
{{- if and (include "bffgate.secretKey" (list . "redis_sentinel_password")) (not .Values.redis.sentinel) }}
{{- fail "a Sentinel password is set but redis.sentinel is empty" }}
{{- end }}
{{- end }}

{{/* bffgate.toml: the gateway configuration, without secrets. */}}
{{- define "bffgate.configToml" -}}
# Rendered by the bffgate Helm chart from its values. No secret is in this file: they come
# from the environment (BFFGATE_<SECTION>__<KEY>), see the Deployment.
# Check it in a pod: bffgate check-config --config /etc/bffgate/bffgate.toml

{{ include "bffgate.tomlTable" (list "server" .Values.server (dict "listen" "0.0.0.0:8080" "admin_listen" "0.0.0.0:9090" "workers" (int (.Values.workers | default 1)))) }}

{{ include "bffgate.tomlTable" (list "oidc" .Values.oidc dict) }}

{{ include "bffgate.tomlTable" (list "session" .Values.session (dict "store" "redis")) }}

{{ include "bffgate.tomlTable" (list "cookie" .Values.cookie dict) }}

{{- $redis := deepCopy .Values.redis }}
{{- if include "bffgate.secretKey" (list . "redis_sentinel_password") }}
{{- $_ := set $redis "sentinel" (merge (dict "password" "env:REDIS_SENTINEL_PASSWORD") $redis.sentinel) }}
{{- end }}
{{ include "bffgate.tomlTable" (list "redis" $redis dict) }}

{{ include "bffgate.tomlTable" (list "log" .Values.log dict) }}

{{ include "bffgate.tomlTable" (list "telemetry" (.Values.telemetry | default dict) dict) }}
{{- range .Values.routes }}

[[routes]]
{{- range $k, $v := . }}
{{- if not (kindIs "invalid" $v) }}
{{ $k }} = {{ include "bffgate.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}
{{ end }}
