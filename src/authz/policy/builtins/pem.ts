/** Go's encoding/pem Decode and the base64 decoding OPA's x509 builtins apply to their input. */

export interface PemBlock {
  type: string;
  bytes: Buffer;
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** base64.StdEncoding.DecodeString: strict alphabet and padding; '\r' and '\n' are skipped, as Go does. */
export function base64Std(s: string): Buffer | undefined {
  const t = s.replace(/[\r\n]/g, '');
  return STRICT_BASE64.test(t) ? Buffer.from(t, 'base64') : undefined;
}

/** Go's "illegal base64 data at input byte N". */
export function base64Error(s: string): string {
  let i = 0;
  let n = 0;
  for (; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\r' || c === '\n') continue;
    if (!/[A-Za-z0-9+/=]/.test(c)) break;
    n++;
  }
  return `illegal base64 data at input byte ${i < s.length ? i : Math.max(0, n - (n % 4 === 0 ? 4 : n % 4))}`;
}

/**
 * pem.Decode: the first PEM block (a "-----BEGIN " line at the start or after a newline, headers skipped,
 * the base64 body up to the matching END line), and the data after it; undefined when there is none.
 */
export function pemDecode(data: Buffer): { block: PemBlock; rest: Buffer } | undefined {
  let text = data.toString('latin1');
  for (;;) {
    const at = text.startsWith('-----BEGIN ') ? 0 : text.indexOf('\n-----BEGIN ');
    if (at < 0) return undefined;
    const start = at === 0 && text.startsWith('-----BEGIN ') ? 0 : at + 1;
    const lineEnd = text.indexOf('\n', start);
    const typeLine = (lineEnd < 0 ? text.slice(start) : text.slice(start, lineEnd)).replace(/[ \t\r]+$/, '');
    const m = /^-----BEGIN (.*)-----$/.exec(typeLine);
    const advance = (): void => {
      const skip = start + 11;
      text = text.slice(skip);
    };
    if (!m || lineEnd < 0) {
      advance();
      continue;
    }
    const type = m[1] as string;
    const endMarker = `-----END ${type}-----`;
    let body = text.slice(lineEnd + 1);
    // headers: "Key: value" lines before a blank line
    const headerEnd = /^(?:[^\n:]+:[^\n]*\n)+\r?\n/.exec(body);
    if (headerEnd) body = body.slice(headerEnd[0].length);
    const endAt = body.startsWith(endMarker) ? 0 : body.indexOf(`\n${endMarker}`);
    if (endAt < 0) {
      advance();
      continue;
    }
    const b64 = body.slice(0, endAt).replace(/[ \t\r\n]/g, '');
    const bytes = STRICT_BASE64.test(b64) ? Buffer.from(b64, 'base64') : undefined;
    const afterEnd = body.slice(endAt + (endAt === 0 ? 0 : 1) + endMarker.length);
    const tail = /^[ \t]*\r?\n?/.exec(afterEnd)?.[0] ?? '';
    if (!bytes) {
      advance();
      continue;
    }
    const consumed = data.length - Buffer.byteLength(afterEnd.slice(tail.length), 'latin1');
    return { block: { type, bytes }, rest: data.subarray(consumed) };
  }
}
