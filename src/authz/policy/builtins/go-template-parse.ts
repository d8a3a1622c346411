import { BuiltinError, NotImplementedError } from './builtin.js';

/**
 * The part of Go's text/template that strings.render_template's templates use, parsed as Go parses it:
 * text, comments, trim markers, {{pipeline}} with fields, variables, string/raw/integer literals,
 * parentheses and `|`; if / else if / else, range (with $i, $v := and else, break, continue), with / else,
 * variable declaration and assignment; the functions and, or, not, len, index, eq, ne, lt, le, gt, ge, print,
 * println, printf (its common verbs). Anything else Go's templates have (define, template, block, the escaping functions,
 * float, char and complex literals) throws NotImplementedError: the evaluation fails instead of rendering
 * something Go would render differently.
 */

export type Term =
  | { kind: 'dot' }
  | { kind: 'field'; names: string[] } // .a.b
  | { kind: 'var'; name: string; names: string[] } // $x.a
  | { kind: 'string'; value: string }
  | { kind: 'int'; value: bigint }
  | { kind: 'bool'; value: boolean }
  | { kind: 'nil' }
  | { kind: 'func'; name: string }
  | { kind: 'pipe'; pipe: Pipeline; names: string[] };

export interface Pipeline {
  decl: string[];
  assign: boolean;
  commands: Term[][];
}

export type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline; line: number }
  | { kind: 'if' | 'with'; pipe: Pipeline; list: Node[]; elseList: Node[] | undefined; line: number }
  | { kind: 'range'; pipe: Pipeline; list: Node[]; elseList: Node[] | undefined; line: number }
  | { kind: 'break' | 'continue' };

const FUNCTIONS = new Set(['and', 'or', 'not', 'len', 'index', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'print', 'println', 'printf']);
const GO_ONLY_FUNCTIONS = new Set(['call', 'html', 'js', 'slice', 'urlquery']);
const SPACE = /[ \t\r\n]/;

interface Action {
  body: string;
  line: number;
}

type Item = { kind: 'text'; text: string } | { kind: 'action'; action: Action };

/** Splits the template into text and actions, applying trim markers and dropping comments. */
function lex(src: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos <= src.length) {
    const open = src.indexOf('{{', pos);
    let text = src.slice(pos, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) items.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    const trimLeft = src[start] === '-' && SPACE.test(src[start + 1] ?? '');
    if (trimLeft) {
      text = text.replace(/[ \t\r\n]+$/, '');
      start += 2;
    }
    if (text) items.push({ kind: 'text', text });
    const line = 1 + (src.slice(0, open).match(/\n/g)?.length ?? 0);
    if (src.startsWith('/*', start)) {
      const close = src.indexOf('*/', start + 2);
      if (close < 0) throw new BuiltinError(`template: template:${line}: unclosed comment`);
      let after = close + 2;
      if (src.startsWith(' -}}', after) || (SPACE.test(src[after] ?? '') && src.startsWith('-}}', after + 1))) {
        trimNext = true;
        after = src.indexOf('}}', after) ;
      }
      if (!src.startsWith('}}', after)) throw new BuiltinError(`template: template:${line}: comment ends before closing delimiter`);
      pos = after + 2;
      continue;
    }
    const end = findClose(src, start, line);
    let body = src.slice(start, end);
    if (SPACE.test(body[body.length - 2] ?? '') && body.endsWith('-')) {
      body = body.slice(0, -2);
      trimNext = true;
    }
    items.push({ kind: 'action', action: { body, line } });
    pos = end + 2;
  }
  return items;
}

/** The "}}" closing an action, skipping quoted strings. */
function findClose(src: string, from: number, line: number): number {
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === '`' || c === "'") {
      const q = c;
      i++;
      while (i < src.length && src[i] !== q) {
        if (src[i] === '\\' && q !== '`') i++;
        if (src[i] === '\n' && q !== '`') throw new BuiltinError(`template: template:${line}: unterminated quoted string`);
        i++;
      }
      if (i >= src.length) throw new BuiltinError(`template: template:${line}: unterminated quoted string`);
      continue;
    }
    if (c === '}' && src[i + 1] === '}') return i;
  }
  throw new BuiltinError(`template: template:${line}: unclosed action`);
}

type Tok = { t: 'word' | 'field' | 'var' | 'string' | 'number' | 'char' | 'punct'; v: string };

function tokenize(body: string, line: number): Tok[] {
  const toks: Tok[] = [];
  const err = (m: string): BuiltinError => new BuiltinError(`template: template:${line}: ${m}`);
  for (let i = 0; i < body.length; ) {
    const c = body[i] as string;
    if (SPACE.test(c)) {
      i++;
      continue;
    }
    let m: RegExpExecArray | null;
    const rest = body.slice(i);
    if ((m = /^:=|^[=|(),]/.exec(rest))) toks.push({ t: 'punct', v: m[0] });
    else if ((m = /^"(?:[^"\\\n]|\\.)*"/.exec(rest))) toks.push({ t: 'string', v: m[0] });
    else if ((m = /^`[^`]*`/.exec(rest))) toks.push({ t: 'string', v: m[0] });
    else if ((m = /^'(?:[^'\\]|\\.)*'/.exec(rest))) toks.push({ t: 'char', v: m[0] });
    else if ((m = /^\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*/.exec(rest))) toks.push({ t: 'var', v: m[0] });
    else if ((m = /^(?:\.[A-Za-z0-9_]+)+|^\./.exec(rest))) toks.push({ t: 'field', v: m[0] });
    else if ((m = /^[+-]?(?:0[xXoObB])?[0-9][0-9a-fA-F_.]*(?:[eEpP][+-]?[0-9_]+)?i?/.exec(rest))) toks.push({ t: 'number', v: m[0] });
    else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) toks.push({ t: 'word', v: m[0] });
    else throw err(`unexpected ${JSON.stringify(c)} in command`);
    i += m[0].length;
  }
  return toks;
}

class Parser {
  private i = 0;

  constructor(
    private readonly toks: Tok[],
    private readonly line: number,
    private readonly vars: string[],
  ) {}

  private err(m: string): BuiltinError {
    return new BuiltinError(`template: template:${this.line}: ${m}`);
  }

  done(): boolean {
    return this.i >= this.toks.length;
  }

  pipeline(context: string): Pipeline {
    const decl: string[] = [];
    let assign = false;
    const save = this.i;
    if (this.toks[this.i]?.t === 'var' && !this.toks[this.i]?.v.includes('.')) {
      const names = [this.toks[this.i]?.v as string];
      let j = this.i + 1;
      if (this.toks[j]?.v === ',' && this.toks[j + 1]?.t === 'var') {
        names.push(this.toks[j + 1]?.v as string);
        j += 2;
      }
      const op = this.toks[j];
      if (op?.t === 'punct' && (op.v === ':=' || op.v === '=') && (names.length === 1 || context === 'range')) {
        assign = op.v === '=';
        if (assign) for (const n of names) if (!this.vars.includes(n)) throw this.err(`undefined variable "${n}"`);
        decl.push(...names);
        this.i = j + 1;
      } else this.i = save;
    }
    const commands: Term[][] = [];
    for (;;) {
      const cmd: Term[] = [];
      while (!this.done() && this.toks[this.i]?.v !== '|' && this.toks[this.i]?.v !== ')') cmd.push(this.operand());
      if (cmd.length === 0) throw this.err(`missing value for ${context}`);
      commands.push(cmd);
      if (this.toks[this.i]?.v !== '|') break;
      this.i++;
    }
    for (const n of decl) if (!assign) this.vars.push(n);
    return { decl, assign, commands };
  }

  private operand(): Term {
    const tok = this.toks[this.i++] as Tok;
    let term: Term;
    if (tok.t === 'punct' && tok.v === '(') {
      const pipe = this.pipeline('parenthesized pipeline');
      if (this.toks[this.i++]?.v !== ')') throw this.err('unclosed left paren');
      const next = this.toks[this.i];
      let names: string[] = [];
      if (next?.t === 'field' && next.v !== '.' && !SPACE.test(next.v)) {
        names = next.v.slice(1).split('.');
        this.i++;
      }
      return { kind: 'pipe', pipe, names };
    }
    if (tok.t === 'field') term = tok.v === '.' ? { kind: 'dot' } : { kind: 'field', names: tok.v.slice(1).split('.') };
    else if (tok.t === 'var') {
      const [name, ...names] = tok.v.split('.');
      if (!this.vars.includes(name as string)) throw this.err(`undefined variable "${name}"`);
      term = { kind: 'var', name: name as string, names };
    } else if (tok.t === 'string') term = { kind: 'string', value: goStringLiteral(tok.v) };
    else if (tok.t === 'number') {
      if (!/^[0-9]+$/.test(tok.v) || (tok.v.length > 1 && tok.v.startsWith('0'))) throw new NotImplementedError(`strings.render_template: the number literal ${tok.v} (only decimal integers are implemented)`);
      term = { kind: 'int', value: BigInt(tok.v) };
    } else if (tok.t === 'char') throw new NotImplementedError(`strings.render_template: the character literal ${tok.v}`);
    else if (tok.t === 'word') {
      if (tok.v === 'true' || tok.v === 'false') term = { kind: 'bool', value: tok.v === 'true' };
      else if (tok.v === 'nil') term = { kind: 'nil' };
      else if (FUNCTIONS.has(tok.v)) term = { kind: 'func', name: tok.v };
      else if (GO_ONLY_FUNCTIONS.has(tok.v)) throw new NotImplementedError(`strings.render_template: the function "${tok.v}"`);
      else throw this.err(`function "${tok.v}" not defined`);
    } else throw this.err(`unexpected "${tok.v}" in operand`);
    return term;
  }
}

/** A Go interpreted string literal ("..." with Go's escapes) or raw string (`...`). */
function goStringLiteral(lit: string): string {
  if (lit.startsWith('`')) return lit.slice(1, -1);
  return lit.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\'"])/g, (_, e: string) => {
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' };
    if (simple[e] !== undefined) return simple[e] as string;
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (e[0] === 'u' || e[0] === 'U') return String.fromCodePoint(parseInt(e.slice(1), 16));
    return String.fromCharCode(parseInt(e, 8));
  });
}

/** Parses a template into its node tree, as text/template's Parse would accept it. */
export function parseTemplate(src: string): Node[] {
  const items = lex(src);
  let k = 0;
  const vars = ['$'];
  const list = (inRange: boolean): { nodes: Node[]; stop: string; elsePipe?: { kind: string; pipe: Pipeline } } => {
    const nodes: Node[] = [];
    while (k < items.length) {
      const item = items[k++] as Item;
      if (item.kind === 'text') {
        nodes.push({ kind: 'text', text: item.text });
        continue;
      }
      const { body, line } = item.action;
      const toks = tokenize(body, line);
      const first = toks[0];
      const p = new Parser(toks.slice(1), line, vars);
      const keyword = first?.t === 'word' ? first.v : undefined;
      if (keyword === 'end') return { nodes, stop: 'end' };
      if (keyword === 'else') {
        const next = toks[1];
        if (next?.t === 'word' && (next.v === 'if' || next.v === 'with')) {
          const pp = new Parser(toks.slice(2), line, vars);
          return { nodes, stop: 'else', elsePipe: { kind: next.v, pipe: pp.pipeline(next.v) } };
        }
        if (toks.length > 1) throw new BuiltinError(`template: template:${line}: unexpected "${toks[1]?.v}" in else`);
        return { nodes, stop: 'else' };
      }
      if (keyword === 'if' || keyword === 'with' || keyword === 'range') {
        const mark = vars.length;
        const pipe = p.pipeline(keyword);
        nodes.push(control(keyword, pipe, line, mark));
        continue;
      }
      if (keyword === 'break' || keyword === 'continue') {
        if (!inRange) throw new BuiltinError(`template: template:${line}: {{${keyword}}} outside {{range}}`);
        nodes.push({ kind: keyword });
        continue;
      }
      if (keyword === 'define' || keyword === 'template' || keyword === 'block') throw new NotImplementedError(`strings.render_template: {{${keyword}}}`);
      if (!first) throw new BuiltinError(`template: template:${line}: missing value for command`);
      const all = new Parser(toks, line, vars);
      const pipe = all.pipeline('command');
      if (!all.done()) throw new BuiltinError(`template: template:${line}: unexpected "${toks[toks.length - 1]?.v}" in command`);
      nodes.push({ kind: 'action', pipe, line });
    }
    return { nodes, stop: 'eof' };
  };
  let rangeDepth = 0;
  const control = (kind: 'if' | 'with' | 'range', pipe: Pipeline, line: number, mark: number): Node => {
    if (kind === 'range') rangeDepth++;
    const body = list(kind === 'range' || rangeDepth > 0);
    if (kind === 'range') rangeDepth--;
    let elseList: Node[] | undefined;
    if (body.stop === 'eof') throw new BuiltinError(`template: template:${line}: unexpected EOF`);
    if (body.stop === 'else') {
      if (body.elsePipe) {
        if (kind === 'range' || body.elsePipe.kind !== kind) throw new BuiltinError(`template: template:${line}: unexpected else ${body.elsePipe.kind}`);
        // {{else if x}} is {{else}}{{if x}}...{{end}}{{end}}: the inner construct ends at the same {{end}}
        elseList = [control(kind, body.elsePipe.pipe, line, vars.length)];
      } else {
        const rest = list(rangeDepth > 0);
        if (rest.stop !== 'end') throw new BuiltinError(`template: template:${line}: expected end; found ${rest.stop}`);
        elseList = rest.nodes;
      }
    }
    vars.length = mark;
    return { kind, pipe, list: body.nodes, elseList, line } as Node;
  };
  const top = list(false);
  if (top.stop !== 'eof') throw new BuiltinError(`template: template:1: unexpected {{${top.stop}}}`);
  return top.nodes;
}
