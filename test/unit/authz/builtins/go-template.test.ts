import { describe, expect, it } from 'vitest';
import { BuiltinError, NotImplementedError } from '../../../../src/authz/policy/builtins/builtin.js';
import type { Value } from '../../../../src/authz/policy/builtins/json-values.js';
import { templateBuiltins } from '../../../../src/authz/policy/builtins/strings-template.js';

const render = (template: string, vars: { [key: string]: Value }): Value | undefined =>
  (templateBuiltins['strings.render_template'] as NonNullable<(typeof templateBuiltins)[string]>)([template, vars], { nowNs: () => 0n, memo: new Map() }) as Value;

const VARS: { [key: string]: Value } = {
  x: 5, y: 10, m: { b: [1, 's'], a: { c: null } }, l: ['p', 'q w'], n: null, b: true, z: 0, s: 'str', e: [],
};

// Every expected output below is what OPA v1.19.1 answered for the same template and variables.
describe('strings.render_template (Go text/template as OPA runs it)', () => {
  it.each([
    ['{{.x}}', '5'],
    ['{{.nothere}} and {{.nothere.deep}}', '<undefined> and <undefined>'],
    ['{{range $i, $name := .l}}{{if $i}},{{end}}hello {{$name}}{{end}}', 'hello p,hello q w'],
    ['{{if eq .x "5"}}yes{{end}}', 'yes'],
    ['{{.m}}|{{.l}}|{{.n}}|{{.b}}|{{.z}}', 'map[a:map[c:<nil>] b:[1 s]]|[p q w]|<undefined>|true|0'],
    ['{{if .z}}a{{else}}b{{end}}{{len .l}}{{index .l 1}}{{index .m "a"}}', 'a2q wmap[c:<nil>]'],
    ['{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}', 'a=map[c:<nil>];b=[1 s];'],
    ['{{lt .x .y}}', 'false'],
    ['{{- .b -}} x {{/* c */}} {{ .b }}', 'truex  true'],
    ['{{with .m.a}}{{.c}}{{end}}{{with .n}}1{{else}}2{{end}}', '<undefined>2'],
    ['{{$x := .l}}{{range $x}}{{.}}{{end}}{{$x = 3}}{{$x}}', 'pq w3'],
    ['{{.l | len}}{{and .b .z}}{{or .n .b}}{{not .b}}', '20truefalse'],
    ['{{range .e}}x{{else}}empty{{end}}{{range 3}}{{.}}{{end}}', 'empty012'],
    ['{{range $i, $e := .l}}{{if eq $i 1}}{{break}}{{end}}{{$e}}{{end}}', 'p'],
    ['{{if or .n .e}}x{{else if .s}}s{{else}}y{{end}}', 's'],
    ['<no value>{{.q}}', '<undefined><undefined>'],
    ['{{print .x .y}}|{{print 1 2}}|{{print "a" 1}}|{{print .n 1}}|{{println .x 1}}|{{print .missing .x}}', '510|1 2|a1|<nil> 1|5 1\n|<nil>5'],
    ['{{printf "%s|%v|%d|%t|%%" .s .x 3 .b}} {{printf "%d %s" .x .b}} {{printf "%s" .m}}{{printf "x" 1}}', 'str|5|3|true|% %!d(json.Number=5) %!s(bool=true) map[a:map[c:<nil>] b:[1 s]]x%!(EXTRA int=1)'],
  ])('%s', (template, want) => {
    expect(render(template, VARS)).toBe(want);
  });

  it.each([
    ['{{eq .x 5}}', 'incompatible types for comparison'],
    ['{{range .x}}{{end}}', "range can't iterate over 5"],
    ['{{.n.deep}}', 'nil pointer evaluating interface {}.deep'],
    ['{{index .l 5}}', 'index out of range: 5'],
    ['{{len .n}}', 'len of nil pointer'],
    ['{{break}}', '{{break}} outside {{range}}'],
    ['{{foo .s}}', 'function "foo" not defined'],
    ['{{ if true }}{{ $b := 2 }}{{ end }}{{ $b }}', 'undefined variable "$b"'],
    ['{{if .b}}unclosed', 'unexpected EOF'],
  ])('%s is an error, as in Go', (template, message) => {
    expect(() => render(template, VARS)).toThrow(BuiltinError);
    expect(() => render(template, VARS)).toThrow(message);
  });

  it.each(['{{printf "%5d" 3}}', '{{printf "%q" .s}}', '{{ 1.5 }}', '{{html .s}}', '{{define "x"}}a{{end}}', '{{0x10}}', "{{'a'}}", '{{index .s 0}}'])(
    '%s is refused (not implemented), never rendered differently',
    (template) => {
      expect(() => render(template, VARS)).toThrow(NotImplementedError);
    },
  );

  it('refuses a non-object variables operand as OPA does', () => {
    expect(() => (templateBuiltins['strings.render_template'] as NonNullable<(typeof templateBuiltins)[string]>)(['{{.}}', 'x'], { nowNs: () => 0n, memo: new Map() })).toThrow(
      'operand 2 must be object but got string',
    );
  });
});
