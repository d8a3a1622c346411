{{- define "toolgate.name" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}

{{- define "toolgate.labels" -}}
app.kubernetes.io/part-of: toolgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "toolgate.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The tool catalog document: values.catalog.tools when given, else the catalog shipped with the chart. */}}
{{- define "toolgate.catalogYaml" -}}
{{- if .Values.catalog.tools -}}
{{ toYaml (dict "tools" .Values.catalog.tools) }}
{{- else -}}
{{ .Files.Get "files/tools.yaml" }}
{{- end -}}
{{- end -}}

{{- define "toolgate.tools" -}}
{{ toJson (fromYaml (include "toolgate.catalogYaml" .)).tools }}
{{- end -}}

{{- define "toolgate.image" -}}{{ .repository }}:{{ .tag }}{{- end -}}

{{- define "toolgate.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint -}}{{ .Values.telemetry.otlpEndpoint }}
{{- else if .Values.telemetry.collector.enabled -}}http://{{ include "toolgate.name" . }}-otel-collector.{{ .Release.Namespace }}.svc:4317
{{- end -}}
{{- end -}}

{{/* Pod security shared by every toolgate pod (the uid is each image's own non-root user). */}}
{{- define "toolgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{- define "toolgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: { drop: [ALL] }
{{- end -}}

{{/* The audit trail of one component: its config lines, its volume mounts and its volumes (values.audit). */}}
{{- define "toolgate.auditConfig" -}}
{{- if .root.Values.audit.enabled }}
# One keyed trail per pod (the pod's name in the file name, so replicas sharing a volume never share a trail).
audit:
  path: /var/log/toolgate/audit/{{ .component }}-${POD_NAME}.jsonl
  key_file: /etc/toolgate/secrets/audit/key
{{- end }}
{{- end -}}

{{- define "toolgate.auditMounts" -}}
{{- if .Values.audit.enabled }}
- { name: audit, mountPath: /var/log/toolgate/audit }
- { name: audit-key, mountPath: /etc/toolgate/secrets/audit, readOnly: true }
{{- end }}
{{- end -}}

{{- define "toolgate.auditVolumes" -}}
{{- if .Values.audit.enabled }}
{{- if .Values.audit.existingClaim }}
- { name: audit, persistentVolumeClaim: { claimName: {{ .Values.audit.existingClaim }} } }
{{- else }}
# The pod's lifetime only: set audit.existingClaim for trails that outlive pods.
- { name: audit, emptyDir: {} }
{{- end }}
- { name: audit-key, secret: { secretName: {{ include "toolgate.name" . }}-audit-key, items: [{ key: key, path: key }] } }
{{- end }}
{{- end -}}

{{/* The shared store (input.history, approvals) in a component's config: an external URL, a URL from a
Secret (through the environment, see toolgate.storeEnv), or the release's Redis; nothing without any. */}}
{{- define "toolgate.storeConfig" -}}
{{- if or .Values.store.url .Values.store.urlSecret.name .Values.redis.enabled }}
store:
  {{- if .Values.store.urlSecret.name }}
  redis_url_env: TOOLGATE_STORE_REDIS_URL
  {{- else if .Values.store.url }}
  redis_url: {{ .Values.store.url | quote }}
  {{- else }}
  redis_url: {{ printf "redis://%s-redis:%d/0" (include "toolgate.name" .) (int .Values.redis.port) | quote }}
  {{- end }}
  key_prefix: {{ .Values.store.keyPrefix | quote }}
  command_timeout_ms: {{ .Values.store.commandTimeoutMs }}
{{- end }}
{{- end -}}

{{- define "toolgate.storeEnv" -}}
{{- with .Values.store.urlSecret }}{{ if .name }}
- { name: TOOLGATE_STORE_REDIS_URL, valueFrom: { secretKeyRef: { name: {{ .name | quote }}, key: {{ .key | default "url" | quote }} } } }
{{- end }}{{ end }}
{{- end -}}

{{/* The authz config's approvals section (issue 18), when approvals.enabled. */}}
{{- define "toolgate.approvalsConfig" -}}
{{- if .Values.approvals.enabled }}
{{- $shared := or .Values.store.url .Values.store.urlSecret.name .Values.redis.enabled }}
{{- if and (not $shared) (or (gt (int .Values.authz.replicas) 1) .Values.autoscaling.enabled) }}
{{- fail "approvals.enabled with several authz replicas needs the shared store (store.url, store.urlSecret or redis.enabled): an approval given on one replica must be found by the others" }}
{{- end }}
approvals:
  address: "0.0.0.0:{{ .Values.approvals.port }}"
  public_url: {{ required "approvals.publicUrl is required when approvals.enabled (e.g. https://gateway.example/approvals/)" .Values.approvals.publicUrl | quote }}
  ttl_seconds: {{ .Values.approvals.ttlSeconds }}
  approvers:
    group: {{ .Values.approvals.approvers.group | quote }}
    group_claim: {{ .Values.approvals.approvers.groupClaim | quote }}
    jwks_file: /etc/toolgate/jwks/jwks.json
    issuer: {{ .Values.envoy.jwt.issuer | quote }}
    audiences: [{{ .Values.approvals.approvers.audience | quote }}]
{{- end }}
{{- end }}
