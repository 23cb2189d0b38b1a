{{/* Name of the chart, or nameOverride. */}}
{{- define "liveswitch-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects, at most 63 characters. */}}
{{- define "liveswitch-exporter.fullname" -}}
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

{{- define "liveswitch-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "liveswitch-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "liveswitch-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "liveswitch-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "liveswitch-exporter.labels" -}}
helm.sh/chart: {{ include "liveswitch-exporter.chart" . }}
{{ include "liveswitch-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: exporter
{{- end }}

{{- define "liveswitch-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "liveswitch-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when the replicas share the fleet through Redis. */}}
{{- define "liveswitch-exporter.redis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{/* The Secret this chart makes, when a value asks for one. */}}
{{- define "liveswitch-exporter.ownSecret" -}}
{{- if or (and .Values.webhook.token (not .Values.webhook.existingSecret))
          (and .Values.gatewayAPI.key (not .Values.gatewayAPI.existingSecret))
          (and .Values.applications.secrets (not .Values.applications.existingSecret))
          (and .Values.redis.url (not .Values.redis.existingSecret))
          .Values.webConfig .Values.webhook.listener.webConfig }}true{{ end }}
{{- end }}

{{/*
Where the exporter reads each secret: one read-only file per secret, never an
environment variable (but the Redis URL, for which the exporter has no -file
flag: it comes from its Secret by secretKeyRef).
*/}}
{{- define "liveswitch-exporter.secretDir" -}}/etc/liveswitch-exporter{{- end }}

{{/*
Refuses values that cannot work, with the reason, before anything is made.
*/}}
{{- define "liveswitch-exporter.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "liveswitch-exporter.redis" .)) }}
{{- fail (printf "replicaCount is %d but the embedded store serves one exporter only: set redis.url or redis.existingSecret to share the fleet between replicas, or replicaCount: 1" (int .Values.replicaCount)) }}
{{- end }}
{{- if and (or .Values.gatewayAPI.key .Values.gatewayAPI.existingSecret .Values.gatewayAPI.ca.configMap .Values.gatewayAPI.ca.secret) (not .Values.gatewayAPI.url) }}
{{- fail "gatewayAPI.key, existingSecret and ca need gatewayAPI.url" }}
{{- end }}
{{- if and .Values.gatewayAPI.ca.configMap .Values.gatewayAPI.ca.secret }}
{{- fail "gatewayAPI.ca: set configMap or secret, not both" }}
{{- end }}
{{- if and (eq .Values.probes.port "webhook") (not .Values.webhook.listener.enabled) }}
{{- fail "probes.port: webhook needs webhook.listener.enabled" }}
{{- end }}
{{- if and .Values.webhook.ingress.enabled (not .Values.webhook.ingress.hosts) }}
{{- fail "webhook.ingress.enabled needs at least one webhook.ingress.hosts entry" }}
{{- end }}
{{- end }}

{{/* HTTPS when the listener's web config sets tls_server_config. */}}
{{- define "liveswitch-exporter.scheme" -}}
{{- if .tls_server_config }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{- define "liveswitch-exporter.args" -}}
- {{ print "--web.listen-address=:" (.Values.service.port) | quote }}
{{- if .Values.webConfig }}
- {{ print "--web.config.file=" (include "liveswitch-exporter.secretDir" .) "/web/web-config.yml" | quote }}
{{- end }}
{{- if .Values.webhook.listener.enabled }}
- {{ print "--webhook.listen-address=:" (.Values.webhook.listener.port) | quote }}
{{- if .Values.webhook.listener.webConfig }}
- {{ print "--webhook.web-config.file=" (include "liveswitch-exporter.secretDir" .) "/webhook-web/web-config.yml" | quote }}
{{- end }}
{{- end }}
{{- if or .Values.webhook.token .Values.webhook.existingSecret }}
- {{ print "--webhook.token-file=" (include "liveswitch-exporter.secretDir" .) "/webhook/token" | quote }}
{{- end }}
{{- with .Values.webhook.allowedCIDRs }}
- {{ print "--webhook.allowed-cidrs=" (join "," .) | quote }}
{{- end }}
{{- if include "liveswitch-exporter.redis" . }}
{{- with .Values.redis.prefix }}
- {{ print "--storage.redis-prefix=" (.) | quote }}
{{- end }}
{{- if .Values.redis.waitReplicas }}
- {{ print "--storage.redis-wait-replicas=" (.Values.redis.waitReplicas) | quote }}
{{- end }}
{{- else }}
- {{ print "--storage.path=/data" | quote }}
- {{ print "--storage.on-damage=" (.Values.persistence.onDamage) | quote }}
{{- end }}
{{- if .Values.gatewayAPI.url }}
- {{ print "--liveswitch.api-url=" (.Values.gatewayAPI.url) | quote }}
- {{ print "--liveswitch.api-interval=" (.Values.gatewayAPI.interval) | quote }}
- {{ print "--liveswitch.api-timeout=" (.Values.gatewayAPI.timeout) | quote }}
{{- if or .Values.gatewayAPI.key .Values.gatewayAPI.existingSecret }}
- {{ print "--liveswitch.api-key-file=" (include "liveswitch-exporter.secretDir" .) "/gateway-api/api-key" | quote }}
{{- end }}
{{- if or .Values.gatewayAPI.ca.configMap .Values.gatewayAPI.ca.secret }}
- {{ print "--liveswitch.api-ca-file=" (include "liveswitch-exporter.secretDir" .) "/gateway-api-ca/ca.crt" | quote }}
{{- end }}
{{- end }}
{{- if or .Values.applications.secrets .Values.applications.existingSecret }}
- {{ print "--webhook.application-secrets-file=" (include "liveswitch-exporter.secretDir" .) "/applications/secrets.yml" | quote }}
{{- end }}
{{- with .Values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
One volume per secret file, each holding only its key (items), mounted
read-only without subPath so that a changed Secret reaches the pod.
*/}}
{{- define "liveswitch-exporter.secretVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      - key: {{ .key }}
        path: {{ .path }}
{{- end }}

{{- define "liveswitch-exporter.volumes" -}}
{{- $own := include "liveswitch-exporter.fullname" . -}}
{{- if not (include "liveswitch-exporter.redis" .) }}
{{- if not .Values.persistence.enabled }}
- name: data
  emptyDir: {}
{{- end }}
{{- end }}
{{- if .Values.webConfig }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "web-config" "secret" $own "key" "web-config.yml" "path" "web-config.yml") }}
{{- end }}
{{- if and .Values.webhook.listener.enabled .Values.webhook.listener.webConfig }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "webhook-web-config" "secret" $own "key" "webhook-web-config.yml" "path" "web-config.yml") }}
{{- end }}
{{- with .Values.tlsSecret }}
- name: tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- if .Values.webhook.existingSecret }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "webhook-token" "secret" .Values.webhook.existingSecret "key" .Values.webhook.existingSecretKey "path" "token") }}
{{- else if .Values.webhook.token }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "webhook-token" "secret" $own "key" "webhook-token" "path" "token") }}
{{- end }}
{{- if .Values.gatewayAPI.url }}
{{- if .Values.gatewayAPI.existingSecret }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "gateway-api-key" "secret" .Values.gatewayAPI.existingSecret "key" .Values.gatewayAPI.existingSecretKey "path" "api-key") }}
{{- else if .Values.gatewayAPI.key }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "gateway-api-key" "secret" $own "key" "api-key" "path" "api-key") }}
{{- end }}
{{- with .Values.gatewayAPI.ca.configMap }}
- name: gateway-api-ca
  configMap:
    name: {{ . }}
    items:
      - key: {{ $.Values.gatewayAPI.ca.key }}
        path: ca.crt
{{- end }}
{{- with .Values.gatewayAPI.ca.secret }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "gateway-api-ca" "secret" . "key" $.Values.gatewayAPI.ca.key "path" "ca.crt") }}
{{- end }}
{{- end }}
{{- if .Values.applications.existingSecret }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "application-secrets" "secret" .Values.applications.existingSecret "key" .Values.applications.existingSecretKey "path" "secrets.yml") }}
{{- else if .Values.applications.secrets }}
{{ include "liveswitch-exporter.secretVolume" (dict "name" "application-secrets" "secret" $own "key" "application-secrets.yml" "path" "secrets.yml") }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "liveswitch-exporter.volumeMounts" -}}
{{- $dir := include "liveswitch-exporter.secretDir" . -}}
{{- if not (include "liveswitch-exporter.redis" .) }}
- name: data
  mountPath: /data
{{- end }}
{{- if .Values.webConfig }}
- {name: web-config, mountPath: {{ $dir }}/web, readOnly: true}
{{- end }}
{{- if and .Values.webhook.listener.enabled .Values.webhook.listener.webConfig }}
- {name: webhook-web-config, mountPath: {{ $dir }}/webhook-web, readOnly: true}
{{- end }}
{{- if .Values.tlsSecret }}
- {name: tls, mountPath: {{ $dir }}/tls, readOnly: true}
{{- end }}
{{- if or .Values.webhook.token .Values.webhook.existingSecret }}
- {name: webhook-token, mountPath: {{ $dir }}/webhook, readOnly: true}
{{- end }}
{{- if .Values.gatewayAPI.url }}
{{- if or .Values.gatewayAPI.key .Values.gatewayAPI.existingSecret }}
- {name: gateway-api-key, mountPath: {{ $dir }}/gateway-api, readOnly: true}
{{- end }}
{{- if or .Values.gatewayAPI.ca.configMap .Values.gatewayAPI.ca.secret }}
- {name: gateway-api-ca, mountPath: {{ $dir }}/gateway-api-ca, readOnly: true}
{{- end }}
{{- end }}
{{- if or .Values.applications.secrets .Values.applications.existingSecret }}
- {name: application-secrets, mountPath: {{ $dir }}/applications, readOnly: true}
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod template's spec, shared by the StatefulSet and the Deployment. */}}
{{- define "liveswitch-exporter.podSpec" -}}
{{- $probePort := .Values.probes.port }}
{{- $probeScheme := include "liveswitch-exporter.scheme" (eq $probePort "webhook" | ternary .Values.webhook.listener.webConfig .Values.webConfig) -}}
serviceAccountName: {{ include "liveswitch-exporter.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
containers:
  - name: exporter
    image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args:
      {{- include "liveswitch-exporter.args" . | trim | nindent 6 }}
    {{- if or (include "liveswitch-exporter.redis" .) .Values.extraEnv }}
    env:
      {{- if include "liveswitch-exporter.redis" . }}
      - name: LIVESWITCH_EXPORTER_STORAGE_REDIS_URL
        valueFrom:
          secretKeyRef:
            name: {{ .Values.redis.existingSecret | default (include "liveswitch-exporter.fullname" .) }}
            key: {{ ternary .Values.redis.existingSecretKey "redis-url" (not (empty .Values.redis.existingSecret)) }}
      {{- end }}
      {{- with .Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- end }}
    ports:
      - name: web
        containerPort: {{ .Values.service.port }}
        protocol: TCP
      {{- if .Values.webhook.listener.enabled }}
      - name: webhook
        containerPort: {{ .Values.webhook.listener.port }}
        protocol: TCP
      {{- end }}
    livenessProbe:
      {{- $live := deepCopy .Values.livenessProbe }}
      {{- $_ := set $live.httpGet "port" $probePort }}
      {{- $_ := set $live.httpGet "scheme" $probeScheme }}
      {{- toYaml $live | nindent 6 }}
    readinessProbe:
      {{- $ready := deepCopy .Values.readinessProbe }}
      {{- $_ := set $ready.httpGet "port" $probePort }}
      {{- $_ := set $ready.httpGet "scheme" $probeScheme }}
      {{- toYaml $ready | nindent 6 }}
    {{- with .Values.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    volumeMounts:
      {{- include "liveswitch-exporter.volumeMounts" . | trim | nindent 6 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $volumes := include "liveswitch-exporter.volumes" . | trim }}
{{- if $volumes }}
volumes:
  {{- $volumes | nindent 2 }}
{{- end }}
{{- end }}
