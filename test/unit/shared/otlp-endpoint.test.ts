import { describe, expect, it } from 'vitest';
import { grpcTargetOf } from '../../../src/shared/tracing.js';

describe('the gRPC target of an OTLP endpoint', () => {
  it('is host:port for URLs and bare addresses, the address itself for Unix sockets', () => {
    expect(grpcTargetOf('http://127.0.0.1:4317')).toBe('127.0.0.1:4317');
    expect(grpcTargetOf('https://collector.observability:4317/')).toBe('collector.observability:4317');
    expect(grpcTargetOf('collector:4317')).toBe('collector:4317');
    expect(grpcTargetOf('unix:///run/toolgate/otlp.sock')).toBe('unix:///run/toolgate/otlp.sock');
  });
});
