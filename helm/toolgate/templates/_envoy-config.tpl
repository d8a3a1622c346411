{{/*
  Envoy's config, rendered from the same template the one-machine gateway uses (files/envoy-toolgate.yaml,
  a link to envoy/toolgate.yaml): placeholders substituted from values, the `#if` blocks kept or dropped,
  extra routes inserted before the catch-all. AUTHZ_HOST is the headless Service: one host per authz pod;
  EXECUTOR_MCP_HOST likewise one host per executor pod (/mcp hashes sessions over them).
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
  "EXECUTOR_MCP_HOST" (printf "%s-executor-pods.%s.svc.cluster.local" $name .Release.Namespace)
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
  "MAX_HEAP_BYTES" (toString (int .Values.envoy.limits.maxHeapBytes))
  "MAX_DOWNSTREAM_CONNECTIONS" (toString (int .Values.envoy.limits.maxDownstreamConnections))
  "REQUEST_HEADERS_TIMEOUT" .Values.envoy.limits.requestHeadersTimeout
  "REQUEST_TIMEOUT" .Values.envoy.limits.requestTimeout
  "CONNECTION_BUFFER_BYTES" (toString (int .Values.envoy.limits.connectionBufferBytes))
  "MCP_RESOURCE_URL" .Values.envoy.mcp.resourceUrl
-}}
{{- $mcpUrl := urlParse .Values.envoy.mcp.resourceUrl -}}
{{- $_ := set $values "MCP_RESOURCE_METADATA_URL" (printf "%s://%s/.well-known/oauth-protected-resource%s" $mcpUrl.scheme $mcpUrl.host (trimSuffix "/" $mcpUrl.path)) -}}
{{- if $otlp -}}
{{- $hostPort := regexReplaceAll "^[a-z]+://" $otlp "" | trimSuffix "/" -}}
{{- $_ := set $values "OTEL_COLLECTOR_HOST" (regexReplaceAll ":[0-9]+$" $hostPort "") -}}
{{- $_ := set $values "OTEL_COLLECTOR_PORT" (regexFind "[0-9]+$" $hostPort) -}}
{{- end -}}
{{- /* The template's `#if NAME` ... `#endif NAME` blocks: kept (markers dropped) when NAME is on, else removed. */ -}}
{{- if .Values.approvals.enabled -}}
{{- $_ := set $values "APPROVALS_HOST" (printf "%s-authz.%s.svc.cluster.local" $name .Release.Namespace) -}}
{{- $_ := set $values "APPROVALS_PORT" (toString .Values.approvals.port) -}}
{{- $_ := set $values "APPROVALS_AUDIENCE" .Values.approvals.approvers.audience -}}
{{- end -}}
{{- $flags := dict "TRACING" (ne $otlp "") "AUTHZ_HEALTH_CHECKS" true "AUTHZ_TLS" true "APPROVALS" .Values.approvals.enabled -}}
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
{{- $mcpRoutes := include "toolgate.mcpRoutes" . | trim -}}
{{- $mcpClusters := include "toolgate.mcpClusters" . | trim -}}
{{- if $mcpRoutes -}}
{{- $cfg = regexReplaceAll "(?m)^[ \t]*# @mcp-routes.*$" $cfg ($mcpRoutes | indent 24) -}}
{{- $cfg = regexReplaceAll "(?m)^[ \t]*# @mcp-clusters.*$" $cfg ($mcpClusters | indent 4) -}}
{{- end -}}
{{- if regexMatch "\\$\\{[A-Z0-9_]+\\}" $cfg -}}
{{- fail (printf "envoy config: placeholders left unrendered: %s" (regexFindAll "\\$\\{[A-Z0-9_]+\\}" $cfg -1 | uniq | join ", ")) -}}
{{- end -}}
{{ $cfg }}
{{- end -}}

{{/*
  The upstream MCP servers' routes and clusters: the same shape src/gateway/mcp-envoy-config.ts renders for
  the one-machine gateway (see the comment there for the order and why).
*/}}
{{- define "toolgate.mcpRoutes" -}}
{{- $extProc := "    envoy.filters.http.ext_proc:\n      \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig\n      config:\n        \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute\n        %s" -}}
{{- $hidden := "[\"x-toolgate-mcp-method\",\"x-toolgate-visible-tools\",\"x-toolgate-agent-id\",\"x-toolgate-agent-auth\",\"x-toolgate-attestation\",\"x-toolgate-tool\",\"x-toolgate-obligations\"]" -}}
{{- range .Values.mcpServers.servers }}
{{- $u := urlParse .url -}}
{{- $cluster := printf "mcp_%s" (.name | replace "-" "_") -}}
{{- $t := int (default 300 .timeout_seconds) -}}
{{- $common := printf "cluster: %s, prefix_rewrite: %s, auto_host_rewrite: true" $cluster (toJson (default "/" $u.path)) -}}
{{- $authz := printf "  typed_per_filter_config:\n    envoy.filters.http.ext_authz:\n      \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n      check_settings:\n        context_extensions: { protocol: mcp, mcp_server: %s }" (toJson .name) }}
- match: { path: "/mcp/{{ .name }}", headers: [{ name: x-toolgate-mcp-method, string_match: { exact: tools/list } }] }
  route: { {{ $common }}, timeout: {{ $t }}s, idle_timeout: {{ add $t 10 }}s }
  request_headers_to_remove: {{ $hidden }}
{{ $authz }}
{{ printf $extProc "overrides: {}" }}
- match: { path: "/mcp/{{ .name }}", headers: [{ name: ":method", string_match: { exact: GET } }] }
  route: { {{ $common }}, timeout: 0s, idle_timeout: {{ max $t 600 }}s }
  request_headers_to_remove: {{ $hidden }}
{{ $authz }}
{{ printf $extProc "disabled: true" }}
- match: { path: "/mcp/{{ .name }}" }
  route: { {{ $common }}, timeout: {{ $t }}s, idle_timeout: {{ add $t 10 }}s }
  request_headers_to_remove: {{ $hidden }}
{{ $authz }}
{{ printf $extProc "overrides: { processing_mode: { request_header_mode: SKIP, response_header_mode: SEND, request_body_mode: NONE, response_body_mode: NONE, request_trailer_mode: SKIP, response_trailer_mode: SKIP } }" }}
{{- end }}
{{- end -}}

{{- define "toolgate.mcpClusters" -}}
{{- range .Values.mcpServers.servers }}
{{- $u := urlParse .url -}}
{{- $cluster := printf "mcp_%s" (.name | replace "-" "_") -}}
{{- $port := trimPrefix (printf "%s:" $u.hostname) $u.host -}}
{{- if eq $port $u.host }}{{ $port = ternary "443" "80" (eq $u.scheme "https") }}{{ end }}
- name: {{ $cluster }}
  type: STRICT_DNS
  connect_timeout: {{ int (default 2 .connect_timeout_seconds) }}s
  load_assignment:
    cluster_name: {{ $cluster }}
    endpoints:
      - lb_endpoints:
          - endpoint: { address: { socket_address: { address: {{ toJson $u.hostname }}, port_value: {{ $port }} } }, hostname: {{ toJson $u.host }} }
{{- if eq $u.scheme "https" }}
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
      sni: {{ toJson $u.hostname }}
{{- end }}
{{- end }}
{{- end -}}
