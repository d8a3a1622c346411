import { BuiltinError, NotImplementedError } from './builtin.js';
import type { Node, Pipeline, Term } from './go-template-parse.js';
import type { Value } from './json-values.js';
import { compare, equal, format, GoInt, GoNumber, goSprintf, INVALID, isMap, toGoValue, truth, typeName, type GoValue } from './go-template-values.js';

/**
 * Executes a parsed template over OPA's template data as Go sees it: ast.As turns the Rego object into
 * map[string]any with numbers as json.Number (a string type: printed as written, truthy when non-empty,
 * compared as strings), so `{{if .n}}` is true for 0 and `{{eq .n 5}}` is an error, as in OPA.
 */

const BREAK = Symbol('break');
const CONTINUE = Symbol('continue');

interface Frame {
  name: string;
  value: GoValue;
}

class Exec {
  private out = '';
  private readonly vars: Frame[];

  constructor(root: GoValue) {
    this.vars = [{ name: '$', value: root }];
  }

  private err(line: number, m: string): BuiltinError {
    return new BuiltinError(`template: template:${line}: executing "template": ${m}`);
  }

  run(nodes: Node[], dot: GoValue): string {
    this.walk(nodes, dot);
    return this.out;
  }

  private walk(nodes: Node[], dot: GoValue): void {
    for (const n of nodes) {
      switch (n.kind) {
        case 'text':
          this.out += n.text;
          break;
        case 'action': {
          const mark = this.vars.length;
          const v = this.pipeline(n.pipe, dot, n.line);
          if (n.pipe.decl.length === 0) this.out += format(v, true);
          // a declaration lives until the end of the enclosing list (its control structure truncates it)
          void mark;
          break;
        }
        case 'if':
        case 'with': {
          const mark = this.vars.length;
          const v = this.pipeline(n.pipe, dot, n.line);
          if (truth(v)) this.walk(n.list, n.kind === 'with' ? v : dot);
          else if (n.elseList) this.walk(n.elseList, dot);
          this.vars.length = mark;
          break;
        }
        case 'range':
          this.range(n, dot);
          break;
        case 'break':
          throw BREAK;
        case 'continue':
          throw CONTINUE;
      }
    }
  }

  private range(n: Extract<Node, { kind: 'range' }>, dot: GoValue): void {
    const mark = this.vars.length;
    const val = this.pipeline({ ...n.pipe, decl: [] }, dot, n.line);
    const decl = n.pipe.decl;
    const entries: [GoValue, GoValue][] = [];
    if (Array.isArray(val)) val.forEach((v, i) => entries.push([new GoInt(BigInt(i)), v]));
    else if (isMap(val)) for (const k of Object.keys(val).sort()) entries.push([k, val[k] as GoValue]);
    else if (val instanceof GoInt) {
      if (decl.length > 1) throw this.err(n.line, `can't use ${val.value} to iterate over more than one variable`);
      for (let i = 0n; i < val.value; i++) entries.push([INVALID, new GoInt(i)]);
    } else if (val !== INVALID && val !== null) throw this.err(n.line, `range can't iterate over ${format(val, true)}`);
    for (const [key, elem] of entries) {
      const frame = this.vars.length;
      if (decl.length === 1) this.bind(decl[0] as string, elem, n.pipe.assign);
      if (decl.length === 2) {
        this.bind(decl[0] as string, key, n.pipe.assign);
        this.bind(decl[1] as string, elem, n.pipe.assign);
      }
      try {
        this.walk(n.list, elem);
      } catch (e) {
        if (e === BREAK) {
          this.vars.length = frame;
          break;
        }
        if (e !== CONTINUE) throw e;
      }
      this.vars.length = frame;
    }
    if (entries.length === 0 && n.elseList) this.walk(n.elseList, dot);
    this.vars.length = mark;
  }

  private bind(name: string, value: GoValue, assign: boolean): void {
    if (assign) this.setVar(name, value);
    else this.vars.push({ name, value });
  }

  private setVar(name: string, value: GoValue): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const f = this.vars[i] as Frame;
      if (f.name === name) {
        f.value = value;
        return;
      }
    }
  }

  private variable(name: string): GoValue {
    for (let i = this.vars.length - 1; i >= 0; i--) if ((this.vars[i] as Frame).name === name) return (this.vars[i] as Frame).value;
    throw new BuiltinError(`template: undefined variable: ${name}`);
  }

  private pipeline(p: Pipeline, dot: GoValue, line: number): GoValue {
    let v: GoValue | undefined;
    for (const cmd of p.commands) v = this.command(cmd, dot, line, v);
    const value = v as GoValue;
    for (const name of p.decl) this.bind(name, value, p.assign);
    return value;
  }

  private command(cmd: Term[], dot: GoValue, line: number, piped: GoValue | undefined): GoValue {
    const [head, ...args] = cmd as [Term, ...Term[]];
    if (head.kind === 'func') {
      const evalArgs = (): GoValue[] => {
        const out: GoValue[] = args.map((a) => this.arg(a, dot, line));
        if (piped !== undefined) out.push(piped);
        return out;
      };
      return this.call(head.name, args, evalArgs, dot, line, piped);
    }
    if (args.length > 0 || piped !== undefined) throw this.err(line, `can't give argument to non-function ${describe(head)}`);
    return this.arg(head, dot, line);
  }

  private arg(t: Term, dot: GoValue, line: number): GoValue {
    switch (t.kind) {
      case 'dot':
        return dot;
      case 'field':
        return this.fields(dot, t.names, line);
      case 'var':
        return this.fields(this.variable(t.name), t.names, line);
      case 'string':
        return t.value;
      case 'int':
        return new GoInt(t.value);
      case 'bool':
        return t.value;
      case 'nil':
        throw this.err(line, 'nil is not a command');
      case 'pipe':
        return this.fields(this.pipeline(t.pipe, dot, line), t.names, line);
      case 'func':
        return this.call(t.name, [], () => [], dot, line, undefined);
    }
  }

  private fields(v: GoValue, names: string[], line: number): GoValue {
    let cur = v;
    for (const name of names) {
      if (cur === INVALID) return INVALID;
      if (cur === null) throw this.err(line, `nil pointer evaluating interface {}.${name}`);
      if (!isMap(cur)) throw this.err(line, `can't evaluate field ${name} in type ${cur instanceof GoInt ? 'int' : 'interface {}'}`);
      cur = name in cur ? (cur[name] as GoValue) : INVALID;
    }
    return cur;
  }

  private call(name: string, args: Term[], evalArgs: () => GoValue[], dot: GoValue, line: number, piped: GoValue | undefined): GoValue {
    const fail = (m: string): BuiltinError => this.err(line, `error calling ${name}: ${m}`);
    if (name === 'and' || name === 'or') {
      const all = [...args.map((a) => () => this.arg(a, dot, line)), ...(piped === undefined ? [] : [() => piped])];
      if (all.length === 0) throw this.err(line, `wrong number of args for ${name}: want at least 1 got 0`);
      let v: GoValue = null;
      for (const get of all) {
        v = get();
        if (truth(v) === (name === 'or')) return v;
      }
      return v;
    }
    const a = evalArgs();
    const want = (n: number): void => {
      if (a.length !== n) throw this.err(line, `wrong number of args for ${name}: want ${n} got ${a.length}`);
    };
    switch (name) {
      case 'printf': {
        const f = a[0];
        if (typeof f !== 'string') throw this.err(line, a.length === 0 ? 'wrong number of args for printf: want at least 1 got 0' : `wrong type for value; expected string; got ${typeName(f as GoValue)}`);
        return goSprintf(f, a.slice(1));
      }
      case 'print':
      case 'println': {
        // fmt.Sprint puts a space between operands when neither is a string (json.Number is one);
        // fmt.Sprintln always does and ends with a newline
        const isString = (v: GoValue): boolean => typeof v === 'string' || v instanceof GoNumber;
        let out = '';
        a.forEach((v, i) => {
          if (i > 0 && (name === 'println' || (!isString(v) && !isString(a[i - 1] as GoValue)))) out += ' ';
          out += format(v === INVALID ? null : v, false);
        });
        return name === 'println' ? `${out}\n` : out;
      }
      case 'not':
        want(1);
        return !truth(a[0] as GoValue);
      case 'len': {
        want(1);
        const v = a[0] as GoValue;
        if (v === null || v === INVALID) throw fail('len of nil pointer');
        if (typeof v === 'string') return new GoInt(BigInt(Buffer.byteLength(v)));
        if (v instanceof GoNumber) return new GoInt(BigInt(Buffer.byteLength(v.text)));
        if (Array.isArray(v)) return new GoInt(BigInt(v.length));
        if (isMap(v)) return new GoInt(BigInt(Object.keys(v).length));
        throw fail(`len of type ${typeName(v)}`);
      }
      case 'index': {
        if (a.length === 0) throw this.err(line, 'wrong number of args for index: want at least 1 got 0');
        let item = a[0] as GoValue;
        for (const ix of a.slice(1)) {
          if (item === null || item === INVALID) throw fail('index of untyped nil');
          if (Array.isArray(item)) {
            if (!(ix instanceof GoInt)) throw fail(`cannot index slice/array with type ${typeName(ix)}`);
            if (ix.value < 0n || ix.value >= BigInt(item.length)) throw fail(`index out of range: ${ix.value}`);
            item = item[Number(ix.value)] as GoValue;
          } else if (isMap(item)) {
            if (typeof ix !== 'string') throw fail(`value has type ${typeName(ix)}; should be string`);
            item = ix in item ? (item[ix] as GoValue) : null;
          } else if (typeof item === 'string' || item instanceof GoNumber) throw new NotImplementedError('strings.render_template: index of a string');
          else throw fail(`can't index item of type ${typeName(item)}`);
        }
        return item;
      }
      case 'eq':
      case 'ne': {
        if (a.length < 2) throw fail('missing argument for comparison');
        if (name === 'ne') want(2);
        const x = a[0] as GoValue;
        return a.slice(1).some((y) => equal(x, y, fail)) === (name === 'eq');
      }
      default: {
        want(2);
        const c = compare(a[0] as GoValue, a[1] as GoValue, fail);
        return name === 'lt' ? c < 0 : name === 'le' ? c <= 0 : name === 'gt' ? c > 0 : c >= 0;
      }
    }
  }
}

function describe(t: Term): string {
  if (t.kind === 'string') return JSON.stringify(t.value);
  if (t.kind === 'int') return t.value.toString();
  if (t.kind === 'bool') return String(t.value);
  return t.kind;
}

export function executeTemplate(nodes: Node[], data: Value): string {
  const root = toGoValue(data);
  return new Exec(root).run(nodes, root);
}
