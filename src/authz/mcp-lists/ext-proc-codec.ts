import { join } from 'node:path';
import type { Metadata } from '../grpc/check-types.js';
import { loadMethodCodec, type MethodCodec } from '../grpc/proto-loading.js';

/** ext_proc reads a mutation's header value from raw_value (bytes); `value` is ignored there. */
export interface HeaderValueOption {
  header: { key: string; raw_value: Buffer };
  append_action?: number;
}

/** The ext_proc messages the tools/list filter reads and writes (protos/envoy/service/ext_proc/v3). */
export interface ProcessingRequest {
  request_headers?: unknown;
  response_headers?: { headers?: { headers?: { key?: string; value?: string; raw_value?: Buffer | Uint8Array }[] }; end_of_stream?: boolean };
  request_body?: { body?: Buffer; end_of_stream?: boolean };
  response_body?: { body?: Buffer; end_of_stream?: boolean };
  request_trailers?: unknown;
  response_trailers?: unknown;
  metadata_context?: Metadata;
}

export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}

export interface CommonResponse {
  status?: number;
  header_mutation?: HeaderMutation;
  body_mutation?: { body?: Buffer; clear_body?: boolean };
}

export interface ProcessingResponse {
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: { status: { code: number }; headers?: HeaderMutation; body?: Buffer; details?: string };
  /** Honoured with the filter's allow_mode_override: e.g. ask for this response's body after its headers. */
  mode_override?: { response_body_mode?: number };
}

/** ProcessingMode.BodySendMode.BUFFERED */
export const BODY_BUFFERED = 2;

/** How ext_proc's Process messages go to and from bytes. */
export type ExtProcCodec = MethodCodec<ProcessingRequest, ProcessingResponse>;

export function loadExtProcCodec(): ExtProcCodec {
  return loadMethodCodec(join('envoy', 'service', 'ext_proc', 'v3', 'external_processor.proto'), 'envoy.service.ext_proc.v3.ExternalProcessor', 'Process');
}
