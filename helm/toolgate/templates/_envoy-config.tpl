{{/*
  Envoy's config, rendered from the same template the one-machine gateway uses (files/envoy-toolgate.yaml,
  a link to envoy/toolgate.yaml): placeholders substituted from values, the `#if` blocks kept or dropped,
  extra routes inserted before the catch-all. AUTHZ_HOST is the headless Service: one host per authz pod.
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
  "AUTHZ_HOST" (printf "%s-authz-pods.%s.svc.cluster.local" $name .Release.Namespace)
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
  "AUTHZ_TLS_NAME" "authz.toolgate.internal"
  "INTERNAL_CA_PATH" "/etc/envoy/internal-tls/ca.crt"
  "INTERNAL_CLIENT_CERT_PATH" "/etc/envoy/internal-tls/envoy.crt"
  "INTERNAL_CLIENT_KEY_PATH" "/etc/envoy/internal-tls/envoy.key"
-}}
{{- if $otlp -}}
{{- $hostPort := regexReplaceAll "^[a-z]+://" $otlp "" | trimSuffix "/" -}}
{{- $_ := set $values "OTEL_COLLECTOR_HOST" (regexReplaceAll ":[0-9]+$" $hostPort "") -}}
{{- $_ := set $values "OTEL_COLLECTOR_PORT" (regexFind "[0-9]+$" $hostPort) -}}
{{- end -}}
{{- /* The template's `#if NAME` ... `#endif NAME` blocks: kept (markers dropped) when NAME is on, else removed. */ -}}
{{- $flags := dict "TRACING" (ne $otlp "") "AUTHZ_HEALTH_CHECKS" true "AUTHZ_TLS" true -}}
{{- range $flag, $on := $flags -}}
{{- if $on -}}
{{- $cfg = regexReplaceAll (printf "(?m)^[ \t]*#(if|endif) %s[ \t]*\n" $flag) $cfg "" -}}
{{- else -}}
{{- $cfg = regexReplaceAll (printf "(?ms)^[ \t]*#if %s[ \t]*\n.*?^[ \t]*#endif %s[ \t]*\n" $flag $flag) $cfg "" -}}
{{- end -}}
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
