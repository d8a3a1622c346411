import { BodyError } from '../../shared/body/body-error.js';
import { parseStrictJson } from '../../shared/body/strict-json.js';

/**
 * `input.parsed_body` / `input.truncated_body` by content type, following the OPA Envoy plugin
 * (envoyauth/request.go, getParsedBody): JSON; x-www-form-urlencoded as key -> list of values;
 * multipart/form-data as field name -> list of values (JSON parts parsed); anything else is not parsed.
 * A body shorter than its content-length was cut by Envoy: it is flagged truncated and left unparsed.
 * One deliberate difference: JSON is read strictly (duplicate keys refused), as everywhere in toolgate.
 */
export interface ParsedBody {
  parsedBody: unknown;
  truncatedBody: boolean;
}

export function parseRequestBody(req: { contentType: string | undefined; body: string; truncated: boolean; contentLength?: string }): ParsedBody {
  const ct = req.contentType;
  if (!ct || req.body === '') return { parsedBody: undefined, truncatedBody: false };
  const parseable = ct.includes('application/json') || ct.includes('application/x-www-form-urlencoded') || ct.includes('multipart/form-data');
  if (!parseable) return { parsedBody: undefined, truncatedBody: false };
  if (req.truncated || isTruncated(req.contentLength, req.body)) return { parsedBody: undefined, truncatedBody: true };
  if (ct.includes('application/json')) return { parsedBody: parseStrictJson(req.body), truncatedBody: false };
  if (ct.includes('application/x-www-form-urlencoded')) return { parsedBody: parseForm(req.body), truncatedBody: false };
  return { parsedBody: parseMultipart(ct, req.body), truncatedBody: false };
}

function isTruncated(contentLength: string | undefined, body: string): boolean {
  if (contentLength === undefined) return false;
  const declared = Number(contentLength);
  return Number.isFinite(declared) && declared > Buffer.byteLength(body);
}

function parseForm(body: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(body)) (out[k] ??= []).push(v);
  return out;
}

function parseMultipart(contentType: string, body: string): Record<string, unknown[]> {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = boundary?.[1] ?? boundary?.[2];
  if (!b) throw new BodyError('invalid_multipart', 'multipart/form-data without a boundary parameter');
  const delimiter = `--${b}`;
  const parts = body.split(delimiter);
  if (parts.length < 3 || !parts[parts.length - 1]?.startsWith('--')) {
    throw new BodyError('invalid_multipart', 'multipart body is not terminated by its closing boundary');
  }
  const out: Record<string, unknown[]> = {};
  for (const raw of parts.slice(1, -1)) {
    const part = raw.replace(/^\r\n/, '').replace(/\r\n$/, '');
    const sep = part.indexOf('\r\n\r\n');
    if (sep === -1) throw new BodyError('invalid_multipart', 'multipart part without a header/body separator');
    const headers = part.slice(0, sep).split('\r\n');
    const value = part.slice(sep + 4);
    const disposition = headers.find((h) => /^content-disposition:/i.test(h)) ?? '';
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    if (!name) continue; // the plugin skips parts without a form name
    const partType = headers.find((h) => /^content-type:/i.test(h)) ?? '';
    (out[name] ??= []).push(partType.includes('application/json') ? parseStrictJson(value) : value);
  }
  return out;
}
