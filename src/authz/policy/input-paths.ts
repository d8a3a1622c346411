/**
 * Which parts of `input` a bundle's policies can read, found by a conservative scan of its Rego sources.
 * The embedded engine then encodes only those parts into wasm memory: a 64 KiB tool call otherwise puts its
 * arguments into the input four times (the body text, `parsed_body`, `mcp.params.arguments`,
 * `tool_call.arguments`), and the wasm module parses every copy whether a rule looks at it or not.
 *
 * Conservative means: a part is left out only when no Rego in the bundle can name it.
 * - `input.a.b` and `input["a"].b` make `a.b` needed, whole (everything under it: an alias `x := input.a`
 *   followed by `x.b.c` is covered, since `a` is kept whole).
 * - A dynamic step (`input.a[x]`, `input.a[0]`) makes the prefix before it needed whole (`a`).
 * - Bare `input` (passed to a function, `walk(input)`, `json.marshal(input)`, `print(input)`, `import input`,
 *   `with input as ...`), a template string (its expressions are not scanned), a bundle without Rego
 *   sources (a wasm-only bundle), or anything the scan cannot read: everything is needed.
 * `opa build -t wasm` puts the Rego sources it compiled into the bundle next to policy.wasm, and a signed
 * bundle signs both: the scan reads the sources the module was built from.
 */

/** A key's node: `'whole'` (the value and everything under it) or the keys needed below it. */
export type InputPathNode = 'whole' | InputPathTree;
export type InputPathTree = Map<string, InputPathNode>;
/** `'all'`: the whole input. Otherwise the top-level keys needed and, for each, what under it. */
export type InputPaths = 'all' | InputPathTree;

export const ALL_INPUT: InputPaths = 'all';

export interface RegoSource {
  path: string;
  source: string;
}

/** The parts of `input` that the given Rego sources can read (`'all'` when in doubt). */
export function inputPathsOf(sources: readonly RegoSource[]): InputPaths {
  if (sources.length === 0) return ALL_INPUT;
  const tree: InputPathTree = new Map();
  for (const { source } of sources) {
    const refs = inputRefsIn(source);
    if (refs === 'all') return ALL_INPUT;
    for (const ref of refs) {
      if (ref.length === 0) return ALL_INPUT;
      addPath(tree, ref);
    }
  }
  return tree;
}

/** True when a policy under `paths` can read `input.<path...>` (or anything under it). h18's `history` asks this. */
export function readsInputPath(paths: InputPaths, path: readonly string[]): boolean {
  let node: InputPathNode = paths === 'all' ? 'whole' : paths;
  for (const key of path) {
    if (node === 'whole') return true;
    const next: InputPathNode | undefined = node.get(key);
    if (!next) return false;
    node = next;
  }
  return true;
}

function addPath(tree: InputPathTree, ref: readonly string[]): void {
  let node = tree;
  for (let i = 0; i < ref.length; i++) {
    const key = ref[i] as string;
    const existing = node.get(key);
    if (existing === 'whole') return;
    if (i === ref.length - 1) {
      node.set(key, 'whole');
      return;
    }
    if (existing) {
      node = existing;
    } else {
      const child: InputPathTree = new Map();
      node.set(key, child);
      node = child;
    }
  }
}

type Token = { kind: 'ident'; text: string } | { kind: 'string'; text: string } | { kind: 'punct'; text: string } | { kind: 'other' };

/** Every `input...` reference in one Rego file as its static key path, or `'all'` when one is not static. */
function inputRefsIn(source: string): string[][] | 'all' {
  const tokens = tokenize(source);
  if (tokens === 'all') return 'all';
  const refs: string[][] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.kind !== 'ident' || t.text !== 'input') continue;
    // `x.input` is a field named input, not the root document.
    const prev = tokens[i - 1];
    if (prev?.kind === 'punct' && prev.text === '.') continue;
    const ref: string[] = [];
    let j = i + 1;
    for (;;) {
      const a = tokens[j];
      const b = tokens[j + 1];
      const c = tokens[j + 2];
      if (a?.kind === 'punct' && a.text === '.' && b?.kind === 'ident') {
        ref.push(b.text);
        j += 2;
      } else if (a?.kind === 'punct' && a.text === '[' && b?.kind === 'string' && c?.kind === 'punct' && c.text === ']') {
        ref.push(b.text);
        j += 3;
      } else {
        break;
      }
    }
    refs.push(ref);
  }
  return refs;
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

/** Rego's lexical layer, as far as the scan needs it: comments and strings skipped, identifiers and punctuation kept. */
function tokenize(src: string): Token[] | 'all' {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i] as string;
    if (ch === '#') {
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl + 1;
    } else if (ch === '"') {
      let j = i + 1;
      let text = '';
      for (; j < src.length && src[j] !== '"'; j++) {
        if (src[j] === '\n') return 'all';
        if (src[j] === '\\') {
          j++;
          const esc = src[j];
          if (esc === 'u') {
            text += String.fromCharCode(parseInt(src.slice(j + 1, j + 5), 16));
            j += 4;
          } else {
            text += esc === 'n' ? '\n' : esc === 't' ? '\t' : esc === 'r' ? '\r' : esc === 'b' ? '\b' : esc === 'f' ? '\f' : (esc ?? '');
          }
        } else {
          text += src[j];
        }
      }
      if (j >= src.length) return 'all';
      out.push({ kind: 'string', text });
      i = j + 1;
    } else if (ch === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) return 'all';
      out.push({ kind: 'string', text: src.slice(i + 1, end) });
      i = end + 1;
    } else if (ch === '$' && (src[i + 1] === '"' || src[i + 1] === '`')) {
      // A template string: its {expressions} may read input, and this scan does not parse them.
      return 'all';
    } else if (IDENT_START.test(ch)) {
      let j = i + 1;
      while (j < src.length && IDENT_PART.test(src[j] as string)) j++;
      out.push({ kind: 'ident', text: src.slice(i, j) });
      i = j;
    } else if (ch === '.' || ch === '[' || ch === ']') {
      out.push({ kind: 'punct', text: ch });
      i++;
    } else if (/\s/.test(ch)) {
      i++;
    } else {
      // Numbers and other operators: kept as a token so that `input` followed by them ends its reference.
      out.push({ kind: 'other' });
      i++;
    }
  }
  return out;
}
