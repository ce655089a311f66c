{{/* Names and labels. */}}
{{- define "revisit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "revisit.fullname" -}}
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

{{/* The name of one component's objects: <fullname>-<component>. Takes (dict "root" $ "name" NAME). */}}
{{- define "revisit.componentName" -}}
{{- printf "%s-%s" (include "revisit.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "revisit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every object of the release. */}}
{{- define "revisit.commonLabels" -}}
helm.sh/chart: {{ include "revisit.chart" . }}
app.kubernetes.io/name: {{ include "revisit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: revisit
{{- end }}

{{/* Takes (dict "root" $ "name" NAME). */}}
{{- define "revisit.labels" -}}
{{ include "revisit.commonLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Takes (dict "root" $ "name" NAME). */}}
{{- define "revisit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "revisit.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "revisit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "revisit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "revisit.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* A value from the release's Secret. Takes (dict "root" $ "name" ENV "key" KEY "optional" BOOL). */}}
{{- define "revisit.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.existingSecret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* DATABASE_* (the migrations Job and every service). */}}
{{- define "revisit.databaseEnv" -}}
{{ include "revisit.secretEnv" (dict "root" . "name" "DATABASE_URL" "key" .Values.secrets.databaseUrlKey) }}
- name: DATABASE_POOL_SIZE
  value: {{ .Values.database.poolSize | quote }}
- name: DATABASE_ECHO
  value: {{ .Values.database.echo | quote }}
{{- end }}

{{/* KAFKA_* (the topics Job and every service). */}}
{{- define "revisit.kafkaEnv" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: KAFKA_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: KAFKA_ENABLE_IDEMPOTENCE
  value: {{ .Values.kafka.enableIdempotence | quote }}
- name: KAFKA_MAX_POLL_RECORDS
  value: {{ .Values.kafka.maxPollRecords | quote }}
- name: KAFKA_FETCH_MAX_WAIT_MS
  value: {{ .Values.kafka.fetchMaxWaitMs | quote }}
- name: KAFKA_SESSION_TIMEOUT_MS
  value: {{ .Values.kafka.sessionTimeoutMs | quote }}
- name: KAFKA_HEARTBEAT_INTERVAL_MS
  value: {{ .Values.kafka.heartbeatIntervalMs | quote }}
- name: KAFKA_DLQ_RETENTION_DAYS
  value: {{ .Values.kafka.dlqRetentionDays | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.saslMechanism | quote }}
{{- if .Values.kafka.saslMechanism }}
{{ include "revisit.secretEnv" (dict "root" . "name" "KAFKA_SASL_USERNAME" "key" .Values.secrets.kafkaSaslUsernameKey) }}
{{ include "revisit.secretEnv" (dict "root" . "name" "KAFKA_SASL_PASSWORD" "key" .Values.secrets.kafkaSaslPasswordKey) }}
{{- else }}
- name: KAFKA_SASL_USERNAME
  value: ""
- name: KAFKA_SASL_PASSWORD
  value: ""
{{- end }}
- name: KAFKA_SSL_CAFILE
  value: {{ .Values.kafka.sslCafile | quote }}
- name: KAFKA_SSL_CERTFILE
  value: {{ .Values.kafka.sslCertfile | quote }}
- name: KAFKA_SSL_KEYFILE
  value: {{ .Values.kafka.sslKeyfile | quote }}
- name: KAFKA_ALLOW_PLAINTEXT
  value: {{ .Values.kafka.allowPlaintext | quote }}
{{- end }}

{{/* Everything one service process reads (shared/config.py). Takes (dict "root" $ "name" NAME "svc" SERVICE). */}}
{{- define "revisit.serviceEnv" -}}
{{- $v := .root.Values -}}
- name: REVISIT_PROFILE
  value: {{ $v.config.profile | quote }}
- name: REVISIT_CLOCK
  value: {{ $v.config.clock | quote }}
- name: REVISIT_HOST
  value: "0.0.0.0"
- name: REVISIT_PORT
  value: {{ .svc.port | quote }}
{{- if .svc.mllpPort }}
# The MLLP listener defaults to loopback, which nothing outside the pod can reach.
- name: REVISIT_MLLP_HOST
  value: "0.0.0.0"
- name: REVISIT_MLLP_PORT
  value: {{ .svc.mllpPort | quote }}
{{- end }}
- name: REVISIT_RELAY_BATCH
  value: {{ $v.config.relayBatch | quote }}
- name: REVISIT_TIMER_BATCH
  value: {{ $v.config.timerBatch | quote }}
- name: REVISIT_POLL_INTERVAL_MS
  value: {{ $v.config.pollIntervalMs | quote }}
- name: REVISIT_TIMER_MAX_ATTEMPTS
  value: {{ $v.config.timerMaxAttempts | quote }}
- name: REVISIT_AUDIT_RETENTION_DAYS
  value: {{ $v.config.auditRetentionDays | quote }}
- name: REVISIT_INBOX_RETENTION_DAYS
  value: {{ $v.config.inboxRetentionDays | quote }}
- name: REVISIT_MESSAGE_BODY_RETENTION_DAYS
  value: {{ $v.config.messageBodyRetentionDays | quote }}
- name: REVISIT_RETENTION_SWEEP_SECONDS
  value: {{ $v.config.retentionSweepSeconds | quote }}
- name: REVISIT_DEFAULT_TIME_ZONE
  value: {{ $v.config.defaultTimeZone | quote }}
{{- if and (eq .name "escalation") $v.console.enabled }}
# Every page (PagerDuty, Slack, e-mail) links to the case in the staff console.
- name: REVISIT_ESCALATION_PUBLIC_URL
  value: {{ $v.console.publicUrl | quote }}
{{- end }}
{{- if eq .name "escalation" }}
# Where pages of a clinic not yet set up go (never only into the sandbox's table).
- name: REVISIT_ESCALATION_FALLBACK_NOTIFIER_KIND
  value: {{ $v.escalationFallback.kind | quote }}
- name: REVISIT_ESCALATION_FALLBACK_NOTIFIER_URL
  value: {{ $v.escalationFallback.url | quote }}
{{ include "revisit.secretEnv" (dict "root" .root "name" "REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET" "key" $v.secrets.escalationFallbackSecretKey) }}
{{- end }}
- name: REVISIT_MAX_BODY_BYTES
  value: {{ int64 $v.config.maxBodyBytes | quote }}
{{ include "revisit.secretEnv" (dict "root" .root "name" "REVISIT_METRICS_TOKEN" "key" $v.secrets.metricsTokenKey) }}
{{ include "revisit.databaseEnv" .root }}
{{ include "revisit.kafkaEnv" .root }}
# Staff tokens: the identity provider's, checked against its keys (no HS256 secret here).
- name: REVISIT_JWT_SECRET
  value: ""
{{ include "revisit.secretEnv" (dict "root" .root "name" "REVISIT_PSEUDONYM_KEY" "key" $v.secrets.pseudonymKeyKey) }}
- name: REVISIT_JWT_ISSUER
  value: {{ $v.config.jwtIssuer | quote }}
- name: REVISIT_JWT_AUDIENCE
  value: {{ $v.config.jwtAudience | quote }}
- name: REVISIT_OIDC_ISSUER
  value: {{ $v.config.oidc.issuer | default $v.console.oidc.issuer | quote }}
- name: REVISIT_OIDC_AUDIENCE
  value: {{ $v.config.oidc.audience | quote }}
- name: REVISIT_OIDC_JWKS_URL
  value: {{ $v.config.oidc.jwksUrl | quote }}
- name: REVISIT_OIDC_ALGORITHMS
  value: {{ $v.config.oidc.algorithms | quote }}
- name: REVISIT_OIDC_ROLE_CLAIM
  value: {{ $v.config.oidc.roleClaim | quote }}
- name: REVISIT_OIDC_CLINICS_CLAIM
  value: {{ $v.config.oidc.clinicsClaim | quote }}
- name: REVISIT_OIDC_JWKS_TTL_S
  value: "600"
- name: REVISIT_TOKEN_LEEWAY_S
  value: "60"
- name: REVISIT_TOKEN_MAX_HOURS
  value: {{ $v.config.tokenMaxHours | quote }}
- name: REVISIT_TOKEN_REVOCATION_CACHE_S
  value: "5"
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.telemetry.otlpEndpoint | quote }}
- name: OTEL_SERVICE_NAMESPACE
  value: {{ $v.telemetry.serviceNamespace | quote }}
- name: LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
{{- /* The previews: the segmenter asks the sequencer, which asks the messenger for words. */}}
{{- if eq .name "sequencer" }}
- name: REVISIT_SEQUENCER_MESSENGER_URL
  value: {{ printf "http://%s:%v" (include "revisit.componentName" (dict "root" .root "name" "messenger")) $v.services.messenger.port | quote }}
{{- end }}
{{- if eq .name "segmenter" }}
- name: REVISIT_SEGMENTER_SEQUENCER_URL
  value: {{ printf "http://%s:%v" (include "revisit.componentName" (dict "root" .root "name" "sequencer")) $v.services.sequencer.port | quote }}
{{- end }}
{{- with $v.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level settings every pod of the release shares (service pods and Jobs). */}}
{{- define "revisit.podCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}
