/**
 * A DER reader with the rules of Go's golang.org/x/crypto/cryptobyte, which crypto/x509 parses with: single-byte
 * tags only, definite minimal lengths, minimal INTEGERs, OID arcs below 2^31, BOOLEAN as 0x00/0xff.
 * Every read returns undefined when the bytes do not follow them (the caller names the error, as Go does).
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  NumericString: 0x12,
  PrintableString: 0x13,
  T61String: 0x14,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  BMPString: 0x1e,
} as const;

/** Context-specific tag [n], primitive or constructed. */
export const ctx = (n: number, constructed = false): number => 0x80 | (constructed ? 0x20 : 0) | n;

export interface DerElement {
  tag: number;
  /** The element's contents. */
  content: Buffer;
  /** The whole element, tag and length included. */
  element: Buffer;
}

export class DerReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  empty(): boolean {
    return this.pos >= this.buf.length;
  }

  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }

  peekTag(): number | undefined {
    return this.empty() ? undefined : (this.buf[this.pos] as number);
  }

  /** The next element whatever its tag. */
  readAny(): DerElement | undefined {
    const b = this.buf;
    let p = this.pos;
    if (b.length - p < 2) return undefined;
    const tag = b[p++] as number;
    if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers: cryptobyte refuses them
    let len = b[p++] as number;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || b.length - p < n) return undefined; // indefinite or too long
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (b[p++] as number);
      if (len < 128) return undefined; // should have used the short form
      if (n > 1 && b[p - n] === 0) return undefined; // leading zero byte
    }
    if (b.length - p < len) return undefined;
    const element = b.subarray(this.pos, p + len);
    const content = b.subarray(p, p + len);
    this.pos = p + len;
    return { tag, content, element };
  }

  /** The next element if it has this tag (nothing consumed otherwise). */
  read(tag: number): DerElement | undefined {
    if (this.peekTag() !== tag) return undefined;
    const start = this.pos;
    const e = this.readAny();
    if (!e) this.pos = start;
    return e;
  }

  /** An optional element: `null` when absent, undefined when malformed. */
  readOptional(tag: number): DerElement | null | undefined {
    if (this.peekTag() !== tag) return null;
    return this.read(tag);
  }

  readInteger(tag: number = TAG.INTEGER): bigint | undefined {
    const e = this.read(tag);
    return e ? derInteger(e.content) : undefined;
  }

  readOid(): number[] | undefined {
    const e = this.read(TAG.OID);
    return e ? derOid(e.content) : undefined;
  }

  readBoolean(): boolean | undefined {
    const e = this.read(TAG.BOOLEAN);
    if (!e || e.content.length !== 1) return undefined;
    const v = e.content[0];
    return v === 0xff ? true : v === 0 ? false : undefined;
  }

  readBitString(): BitString | undefined {
    const e = this.read(TAG.BIT_STRING);
    return e ? derBitString(e.content) : undefined;
  }
}

export interface BitString {
  bytes: Buffer;
  bitLength: number;
}

export function derBitString(c: Buffer): BitString | undefined {
  if (c.length === 0) return undefined;
  const padding = c[0] as number;
  if (padding > 7 || (c.length === 1 && padding > 0)) return undefined;
  const bytes = c.subarray(1);
  if (padding > 0 && ((bytes[bytes.length - 1] as number) & ((1 << padding) - 1)) !== 0) return undefined;
  return { bytes, bitLength: bytes.length * 8 - padding };
}

/** Bit i (from the most significant bit of the first byte), as asn1.BitString.At. */
export function bitAt(b: BitString, i: number): number {
  if (i < 0 || i >= b.bitLength) return 0;
  return ((b.bytes[i >> 3] as number) >> (7 - (i & 7))) & 1;
}

/** A minimal two's-complement INTEGER, as cryptobyte's checkASN1Integer. */
export function derInteger(c: Buffer): bigint | undefined {
  if (c.length === 0) return undefined;
  if (c.length > 1 && ((c[0] === 0 && ((c[1] as number) & 0x80) === 0) || (c[0] === 0xff && ((c[1] as number) & 0x80) === 0x80))) return undefined;
  let v = BigInt(`0x${c.toString('hex')}`);
  if ((c[0] as number) & 0x80) v -= 1n << BigInt(c.length * 8);
  return v;
}

/** OBJECT IDENTIFIER arcs, as cryptobyte's ReadASN1ObjectIdentifier (each arc below 2^31, minimal base-128). */
export function derOid(c: Buffer): number[] | undefined {
  const arcs = oidArcs(c, 31);
  if (!arcs) return undefined;
  const first = arcs[0] as bigint;
  const head = first < 80n ? [Number(first / 40n), Number(first % 40n)] : [2, Number(first - 80n)];
  return [...head, ...arcs.slice(1).map(Number)];
}

/** The dotted form of an OID of any size (x509.OID), or undefined when not minimal base-128. */
export function derOidString(c: Buffer): string | undefined {
  const arcs = oidArcs(c, Infinity);
  if (!arcs) return undefined;
  const first = arcs[0] as bigint;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

function oidArcs(c: Buffer, maxBits: number): bigint[] | undefined {
  if (c.length === 0) return undefined;
  const arcs: bigint[] = [];
  let i = 0;
  while (i < c.length) {
    let v = 0n;
    let bits = 0;
    if (c[i] === 0x80) return undefined; // not minimal
    for (;;) {
      if (i >= c.length) return undefined;
      const byte = c[i++] as number;
      v = (v << 7n) | BigInt(byte & 0x7f);
      bits += 7;
      if (bits > 7 && maxBits !== Infinity && v >= 1n << BigInt(maxBits)) return undefined;
      if ((byte & 0x80) === 0) break;
    }
    arcs.push(v);
  }
  return arcs;
}

/** Go's encoding of an OID for comparisons and map keys. */
export const oidKey = (oid: readonly number[]): string => oid.join('.');
