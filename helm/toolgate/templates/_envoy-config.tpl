{{/*
  Envoy's config, rendered from the same template the one-machine gateway uses (files/envoy-toolgate.yaml,
  a link to envoy/toolgate.yaml): placeholders substituted from values, the TRACING blocks kept or dropped,
  extra routes inserted before the catch-all.
*/}}
{{- define "toolgate.envoyConfig" -}}
{{- $cfg := .Files.Get "files/envoy-toolgate.yaml" -}}
{{- $name := include "toolgate.name" . -}}
{{- $otlp := include "toolgate.otlpEndpoint" . -}}
{{- $values := dict
  "ADMIN_PORT" "9901"
  "LISTEN_ADDRESS" "0.0.0.0"
  "HTTP_PORT" (toString .Values.envoy.httpPort)
  "MTLS_PORT" (toString .Values.envoy.mtlsPort)
  "AUTHZ_HOST" (printf "%s-authz.%s.svc.cluster.local" $name .Release.Namespace)
  "AUTHZ_PORT" (toString .Values.authz.grpcPort)
  "AUTHZ_TIMEOUT" .Values.envoy.authzTimeout
  "EXECUTOR_HOST" (printf "%s-executor.%s.svc.cluster.local" $name .Release.Namespace)
  "EXECUTOR_PORT" (toString .Values.executor.httpPort)
  "MAX_REQUEST_BYTES" (toString (int .Values.envoy.maxRequestBytes))
  "TLS_CERT_PATH" "/etc/envoy/tls/tls.crt"
  "TLS_KEY_PATH" "/etc/envoy/tls/tls.key"
  "CLIENT_CA_PATH" "/etc/envoy/tls/ca.crt"
  "JWKS_PATH" "/etc/envoy/jwks/jwks.json"
  "JWT_ISSUER" .Values.envoy.jwt.issuer
  "JWT_AUDIENCE" .Values.envoy.jwt.audience
  "ACCESS_LOG_PATH" "/dev/stdout"
  "MAX_HEAP_BYTES" (toString (int .Values.envoy.limits.maxHeapBytes))
  "MAX_DOWNSTREAM_CONNECTIONS" (toString (int .Values.envoy.limits.maxDownstreamConnections))
  "REQUEST_HEADERS_TIMEOUT" .Values.envoy.limits.requestHeadersTimeout
  "REQUEST_TIMEOUT" .Values.envoy.limits.requestTimeout
-}}
{{- if $otlp -}}
{{- $hostPort := regexReplaceAll "^[a-z]+://" $otlp "" | trimSuffix "/" -}}
{{- $_ := set $values "OTEL_COLLECTOR_HOST" (regexReplaceAll ":[0-9]+$" $hostPort "") -}}
{{- $_ := set $values "OTEL_COLLECTOR_PORT" (regexFind "[0-9]+$" $hostPort) -}}
{{- $cfg = regexReplaceAll "(?m)^[ \t]*#(if|endif) TRACING[ \t]*\n" $cfg "" -}}
{{- else -}}
{{- $cfg = regexReplaceAll "(?ms)^[ \t]*#if TRACING[ \t]*\n.*?^[ \t]*#endif TRACING[ \t]*\n" $cfg "" -}}
{{- end -}}
{{- range $k, $v := $values -}}
{{- $cfg = replace (printf "${%s}" $k) (toString $v) $cfg -}}
{{- end -}}
{{- if .Values.envoy.extraRoutes -}}
{{- $cfg = regexReplaceAll "(?m)^[ \t]*# @extra-routes.*\n" $cfg (printf "%s\n" (toYaml .Values.envoy.extraRoutes | indent 24)) -}}
{{- end -}}
{{- if regexMatch "\\$\\{[A-Z0-9_]+\\}" $cfg -}}
{{- fail (printf "envoy config: placeholders left unrendered: %s" (regexFindAll "\\$\\{[A-Z0-9_]+\\}" $cfg -1 | uniq | join ", ")) -}}
{{- end -}}
{{ $cfg }}
{{- end -}}
