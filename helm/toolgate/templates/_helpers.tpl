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
