import { describe, expect, it } from 'vitest';
import { parseRequestBody } from '../../../src/authz/input/parsed-body.js';

describe('parsed_body like the OPA Envoy plugin', () => {
  const parse = (contentType: string | undefined, body: string, contentLength?: string) =>
    parseRequestBody({ contentType, body, truncated: false, ...(contentLength ? { contentLength } : {}) });

  it('parses JSON, including +json style content types that contain application/json', () => {
    expect(parse('application/json; charset=utf-8', '{"a":[1]}')).toEqual({ parsedBody: { a: [1] }, truncatedBody: false });
  });

  it('parses forms as key -> list of values', () => {
    expect(parse('application/x-www-form-urlencoded', 'a=1&a=2&b=x+y&c=%C3%A9').parsedBody).toEqual({ a: ['1', '2'], b: ['x y'], c: ['é'] });
  });

  it('parses multipart forms, JSON parts as JSON', () => {
    const b = 'XyZ';
    const body = [
      `--${b}`,
      'Content-Disposition: form-data; name="field"',
      '',
      'value 1',
      `--${b}`,
      'Content-Disposition: form-data; name="doc"',
      'Content-Type: application/json',
      '',
      '{"k":true}',
      `--${b}`,
      'Content-Disposition: form-data; name="field"',
      '',
      'value 2',
      `--${b}--`,
      '',
    ].join('\r\n');
    expect(parse(`multipart/form-data; boundary=${b}`, body).parsedBody).toEqual({ field: ['value 1', 'value 2'], doc: [{ k: true }] });
    expect(() => parse('multipart/form-data', body)).toThrow(/boundary/);
  });

  it('leaves other content types unparsed and flags bodies shorter than their content-length', () => {
    expect(parse('text/plain', 'hello').parsedBody).toBeUndefined();
    expect(parse(undefined, '{"a":1}').parsedBody).toBeUndefined();
    expect(parse('application/json', '{"a":', '100')).toEqual({ parsedBody: undefined, truncatedBody: true });
  });

  it('refuses duplicate keys in JSON bodies', () => {
    expect(() => parse('application/json', '{"a":1,"a":2}')).toThrow(/duplicate/);
  });
});
