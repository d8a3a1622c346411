/**
 * Decoded shapes of the ext_authz v3 messages, as @grpc/proto-loader yields them with the options in
 * proto-loading.ts (snake_case keys, int64 as decimal strings, bytes as Buffer, absent fields undefined).
 */
export interface ProtoValue {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
  nullValue?: number | string;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
}

export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

export interface SocketAddress {
  address?: string;
  port_value?: number;
  named_port?: string;
}

export interface Peer {
  address?: { socket_address?: SocketAddress; pipe?: { path?: string; mode?: number } };
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}

export interface HttpRequestAttributes {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  path?: string;
  host?: string;
  scheme?: string;
  query?: string;
  fragment?: string;
  size?: string;
  protocol?: string;
  body?: string;
  raw_body?: Buffer;
}

export interface Metadata {
  filter_metadata?: Record<string, ProtoStruct>;
}

export interface AttributeContext {
  source?: Peer;
  destination?: Peer;
  request?: { time?: { seconds?: string; nanos?: number }; http?: HttpRequestAttributes };
  context_extensions?: Record<string, string>;
  metadata_context?: Metadata;
  route_metadata_context?: Metadata;
  tls_session?: { sni?: string };
}

export interface CheckRequest {
  attributes?: AttributeContext;
}

export interface HeaderValueOption {
  header: { key: string; value: string };
  /** 0 append, 1 add if absent, 2 overwrite or add, 3 overwrite if exists. */
  append_action?: number;
}

export interface CheckResponse {
  status: { code: number; message?: string };
  denied_response?: { status: { code: number }; headers: HeaderValueOption[]; body: string };
  ok_response?: {
    headers: HeaderValueOption[];
    headers_to_remove: string[];
    response_headers_to_add: HeaderValueOption[];
    query_parameters_to_set: { key: string; value: string }[];
    query_parameters_to_remove: string[];
  };
  dynamic_metadata?: ProtoStruct;
}

/** gRPC status codes used by the server (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const RpcCode = { OK: 0, CANCELLED: 1, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;
export type RpcCode = (typeof RpcCode)[keyof typeof RpcCode];
