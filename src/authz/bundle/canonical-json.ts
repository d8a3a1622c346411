/**
 * The canonical text OPA hashes for a structured bundle file: objects with keys sorted, no whitespace, arrays
 * in order, strings encoded as Go's encoding/json does (with HTML escaping off), and numbers exactly as
 * written (OPA decodes them as json.Number). JSON.parse cannot keep a number's literal, hence this small
 * parser.
 */
export function canonicalJsonOf(text: string): string {
  const p = new Parser(text);
  p.space();
  const out = p.value();
  p.space();
  if (p.i !== text.length) throw new SyntaxError(`unexpected "${text[p.i]}" at ${p.i}`);
  return out;
}

class Parser {
  i = 0;
  constructor(private readonly s: string) {}

  space(): void {
    while (this.i < this.s.length && ' \t\n\r'.includes(this.s[this.i] as string)) this.i++;
  }

  value(): string {
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return goString(this.string());
    for (const lit of ['true', 'false', 'null']) {
      if (this.s.startsWith(lit, this.i)) {
        this.i += lit.length;
        return lit;
      }
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m || m[0] === '' || m[0] === '-') throw new SyntaxError(`unexpected "${c ?? 'end'}" at ${this.i}`);
    this.i += m[0].length;
    return m[0];
  }

  private object(): string {
    this.i++;
    const entries: [string, string][] = [];
    this.space();
    if (this.s[this.i] === '}') {
      this.i++;
      return '{}';
    }
    for (;;) {
      this.space();
      if (this.s[this.i] !== '"') throw new SyntaxError(`expected a key at ${this.i}`);
      const key = this.string();
      this.space();
      this.expect(':');
      this.space();
      entries.push([key, this.value()]);
      this.space();
      if (this.s[this.i] === ',') {
        this.i++;
        continue;
      }
      this.expect('}');
      break;
    }
    // Go sorts keys by bytes; a later duplicate key wins, as in encoding/json.
    const byKey = new Map(entries);
    const keys = [...byKey.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map((k) => `${goString(k)}:${byKey.get(k) as string}`).join(',')}}`;
  }

  private array(): string {
    this.i++;
    const items: string[] = [];
    this.space();
    if (this.s[this.i] === ']') {
      this.i++;
      return '[]';
    }
    for (;;) {
      this.space();
      items.push(this.value());
      this.space();
      if (this.s[this.i] === ',') {
        this.i++;
        continue;
      }
      this.expect(']');
      break;
    }
    return `[${items.join(',')}]`;
  }

  private string(): string {
    const start = this.i;
    this.i++;
    while (this.i < this.s.length && this.s[this.i] !== '"') this.i += this.s[this.i] === '\\' ? 2 : 1;
    this.expect('"');
    return JSON.parse(this.s.slice(start, this.i)) as string;
  }

  private expect(c: string): void {
    if (this.s[this.i] !== c) throw new SyntaxError(`expected "${c}" at ${this.i}`);
    this.i++;
  }
}

/** JSON.stringify differs from Go's encoder only in U+2028/U+2029, which Go escapes. */
function goString(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
