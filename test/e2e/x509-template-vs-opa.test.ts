import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundleFile } from '../../src/authz/bundle/bundle.js';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import type { JsonObject } from '../../src/authz/input/envoy-input.js';
import type { EncodedInput } from '../../src/authz/input/input-json.js';
import { WasmPolicyEngine } from '../../src/authz/policy/wasm-engine.js';
import { ensureOpa } from '../../src/toolchain/install.js';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../support/managed-process.js';
import { sameValue } from '../support/opa-cases/run-case.js';
import { makeX509Fixtures, type X509Fixtures } from '../support/x509-fixtures.js';

/** An input the engine takes as one piece of JSON (no shared arguments). */
const wholeInput = (json: string): EncodedInput => {
  const skeleton = Buffer.from(json);
  return { skeleton, byteLength: skeleton.length };
};

/**
 * Beyond OPA's own cases (opa-builtin-conformance): the x509 and key builtins on certificates made here with
 * openssl (every SAN type, name constraints met and broken in each way, policies, RSA-PSS, SHA-1, v1, CSRs with attributes, PKCS#1/8 and
 * SEC 1 keys), and strings.render_template on templates that reach every construct implemented and several
 * it refuses. Each case is one policy call, through the embedded engine (policy.wasm with the host builtins,
 * strict builtin errors) and through a real OPA server. They must give the same value, or both an error, or
 * the embedded engine refuses with its reason a case listed below.
 */

const FUNCTIONS: Record<string, number> = {
  'crypto.x509.parse_certificates': 1,
  'crypto.x509.parse_and_verify_certificates': 1,
  'crypto.x509.parse_and_verify_certificates_with_options': 2,
  'crypto.x509.parse_certificate_request': 1,
  'crypto.x509.parse_keypair': 2,
  'crypto.parse_private_keys': 1,
  'strings.render_template': 2,
};

const POLICY = [
  'package diff',
  'import rego.v1',
  // mutated inputs, without strict errors: the indices that parse and what they parse to
  'certs := [{"i": i, "v": v} | some i; c := input.certs[i]; v := crypto.x509.parse_certificates(c)]',
  'csrs := [{"i": i, "v": v} | some i; c := input.csrs[i]; v := crypto.x509.parse_certificate_request(c)]',
  ...Object.entries(FUNCTIONS).map(
    ([fn, n]) => `r := {"value": ${fn}(${Array.from({ length: n }, (_, i) => `input.a[${i}]`).join(', ')})} if input.fn == "${fn}"`,
  ),
].join('\n');

interface Case {
  fn: string;
  a: unknown[];
  note: string;
}

/** Cases the embedded engine refuses (the evaluation fails naming what it does not implement), and why. */
const REFUSED: Record<string, string> = {
  'template: float literal': 'only decimal integer literals are implemented',
  'template: printf with a width': 'printf: only %v, %s, %d, %t and %% without flags or width are implemented',
  'template: html': 'the formatting functions are not implemented',
  'template: define': 'define/template/block are not implemented',
  'template: hex literal': 'only decimal integer literals are implemented',
  'template: char literal': 'character literals are not implemented',
};

function cases(f: X509Fixtures): Case[] {
  const out: Case[] = [];
  const add = (note: string, fn: string, ...a: unknown[]): void => void out.push({ note, fn, a });
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  for (const n of ['root.crt', 'int.crt', 'leaf.crt', 'sha1.crt', 'nc.crt', 'pss.crt', 'v1.crt']) {
    add(`parse ${n} (PEM)`, 'crypto.x509.parse_certificates', f.text(n));
    add(`parse ${n} (base64 DER)`, 'crypto.x509.parse_certificates', f.der(n));
    add(`parse ${n} (base64 PEM)`, 'crypto.x509.parse_certificates', b64(f.text(n)));
  }
  const chain = f.text('root.crt') + f.text('int.crt') + f.text('leaf.crt');
  add('parse a chain', 'crypto.x509.parse_certificates', chain);
  add('parse garbage', 'crypto.x509.parse_certificates', 'not a certificate');
  add('verify root, intermediate, leaf', 'crypto.x509.parse_and_verify_certificates', chain);
  add('verify without the intermediate', 'crypto.x509.parse_and_verify_certificates', f.text('root.crt') + f.text('leaf.crt'));
  add('verify a SHA-1 signature', 'crypto.x509.parse_and_verify_certificates', f.text('root.crt') + f.text('sha1.crt'));
  add('verify one certificate', 'crypto.x509.parse_and_verify_certificates', f.text('root.crt'));
  add('verify a self-signed RSA-PSS certificate', 'crypto.x509.parse_and_verify_certificates', f.text('pss.crt') + f.text('pss.crt'));
  add('verify garbage', 'crypto.x509.parse_and_verify_certificates', 'garbage');
  const opts = 'crypto.x509.parse_and_verify_certificates_with_options';
  add('DNSName matching', opts, chain, { DNSName: 'leaf.example.com' });
  add('DNSName matching a wildcard', opts, chain, { DNSName: 'x.wild.example.com' });
  add('DNSName as an IP address', opts, chain, { DNSName: '192.0.2.1' });
  add('DNSName not matching', opts, chain, { DNSName: 'other.example.com' });
  add('CurrentTime before the validity', opts, chain, { CurrentTime: 1577836800000000000n });
  add('KeyUsages not allowed', opts, chain, { KeyUsages: ['KeyUsageCodeSigning'] });
  add('KeyUsages allowed', opts, chain, { KeyUsages: ['KeyUsageClientAuth'] });
  add('KeyUsages unknown', opts, chain, { KeyUsages: ['Nope', 'Bad'] });
  add('an unknown option', opts, chain, { Other: 1 });
  add('MaxConstraintComparisons', opts, chain, { MaxConstraintComparisons: 5 });
  add('a name-constrained CA as the leaf', opts, f.text('root.crt') + f.text('nc.crt'), {});
  for (const leaf of ['nc-ok', 'nc-dns', 'nc-ip', 'nc-email', 'nc-uri']) {
    add(`name constraints: ${leaf}`, 'crypto.x509.parse_and_verify_certificates', f.text('root.crt') + f.text('nc.crt') + f.text(`${leaf}.crt`));
  }
  add('CSR', 'crypto.x509.parse_certificate_request', f.text('int.csr'));
  add('CSR with extensions and attributes', 'crypto.x509.parse_certificate_request', f.text('attrs.csr'));
  add('CSR as base64 DER', 'crypto.x509.parse_certificate_request', f.der('attrs.csr'));
  add('CSR with an Ed25519 key', 'crypto.x509.parse_certificate_request', f.text('leaf.csr'));
  add('CSR given a certificate', 'crypto.x509.parse_certificate_request', f.text('root.crt'));
  add('private keys of every kind', 'crypto.parse_private_keys', ['int.key', 'root.key', 'leaf.key', 'ec384.p8', 'x25519.key', 'ec384.key'].map((n) => f.text(n)).join(''));
  add('private key, base64', 'crypto.parse_private_keys', b64(f.text('int.key')));
  add('private keys, none', 'crypto.parse_private_keys', 'nope');
  add('private keys, empty', 'crypto.parse_private_keys', '');
  add('key pair RSA', 'crypto.x509.parse_keypair', f.text('int.crt'), f.text('int.key'));
  add('key pair Ed25519', 'crypto.x509.parse_keypair', f.text('leaf.crt'), f.text('leaf.key'));
  add('key pair EC', 'crypto.x509.parse_keypair', f.text('root.crt'), f.text('root.key'));
  add('key pair mismatched', 'crypto.x509.parse_keypair', f.text('root.crt'), f.text('int.key'));
  add('key pair DER and base64', 'crypto.x509.parse_keypair', f.der('int.crt'), b64(f.text('int.key')));

  const vars = {
    x: 5, y: 10, m: { b: [1, 's'], a: { c: null } }, l: ['p', 'q w'], n: null, b: true, f: 1.5, z: 0, s: 'str', e: [], em: {},
    nested: { list: [{ name: 'a', tags: ['t1', 't2'] }, { name: 'b', tags: [] }] },
  };
  const templates: [string, string][] = [
    ['field', '{{.x}}'], ['missing key', '{{.testvarnotprovided}} and {{.missing.deep}}'], ['range with index', '{{range $i, $name := .l}}{{if $i}},{{end}}hello {{$name}}{{end}}'],
    ['json.Number compared as a string', '{{if eq .x "5"}}yes{{end}}'], ['printing values', '{{.m}}|{{.l}}|{{.n}}|{{.b}}|{{.f}}|{{.z}}|{{$}}'],
    ['truth, len, index', '{{if .z}}a{{else}}b{{end}}{{len .l}}{{index .l 1}}{{index .m "a"}}{{index .m "zz"}}'], ['range over a map', '{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}'],
    ['lt on json.Number', '{{lt .x .y}}'], ['eq json.Number and int', '{{eq .x 5}}'], ['range over a number', '{{range .x}}{{end}}'], ['field of null', '{{.n.deep}}'],
    ['index out of range', '{{index .l 5}}'], ['field of a list', '{{.l.x}}'], ['trim markers and comments', '{{- .b -}} x {{/* c */}} {{ .b }}{{ .s -}}\n\n  {{- .s }}'],
    ['with and else', '{{with .m.a}}{{.c}}{{end}}{{with .n}}1{{else}}2{{end}}{{with $v := .s}}{{$v}}{{.}}{{end}}'], ['variables', '{{$x := .l}}{{range $x}}{{.}}{{end}}{{$x = 3}}{{$x}}'],
    ['range else', '{{range .e}}x{{else}}empty{{end}}{{range .em}}x{{else}}emptym{{end}}{{range .n}}x{{else}}nil{{end}}{{range $i, $e := .l}}{{$i}}{{$e}}{{else}}none{{end}}'],
    ['pipes and logic', '{{.l | len}}{{and .b .z}}{{or .n .b}}{{not .b}}{{ .x | eq "5" }}{{if and .b (not .n)}}ok{{end}}{{if or .n .e}}x{{else if .s}}s{{else}}y{{end}}'],
    ['len of null', '{{len .n}}'], ['eq with nil and bools', '{{eq .n .q}}{{eq .b true}}{{ne "a" "b"}}{{eq .x .x .y}}'], ['range over an int', '{{range 3}}{{.}}{{end}}'],
    ['break outside range', '{{break}}'], ['break and continue', '{{range $i, $e := .l}}{{if eq $i 1}}{{break}}{{end}}{{$e}}{{end}}{{range .l}}{{if eq . "p"}}{{continue}}{{end}}{{.}}{{end}}'],
    ['string literals', '{{"a\\tb\\u00e9\\x41"}}{{`raw`}}'], ['nested range', '{{range .nested.list}}{{.name}}:{{range $j, $t := .tags}}{{if $j}},{{end}}{{$t}}{{else}}-{{end}};{{end}}'],
    ['parentheses', '{{(index .l 0)}}{{(.m).b}}'], ['comparisons', '{{lt .s "t"}}{{gt .x "10"}}{{le 1 2}}{{ge 2 2}}'], ['lt on bools', '{{lt .b .b}}'], ['eq on lists', '{{eq .l .l}}'],
    ['undefined function', '{{foo .s}}'], ['undefined variable', '{{$undefined}}'], ['variable scope', '{{ if true }}{{ $b := 2 }}{{ end }}{{ $b }}'], ['unclosed if', '{{if .b}}x'],
    ['literal "<no value>"', '<no value>{{.q}}'], ['null inside a map', '{{.m.a.c}}{{if .m.a.c}}t{{else}}f{{end}}'], ['field of null inside a map', '{{.m.a.c.d}}'],
    ['print and println', '{{print .x .y}}|{{print 1 2}}|{{print "a" 1}}|{{print .b .b}}|{{print .missing}}|{{print .n 1}}|{{print .l .m}}|{{print}}|{{println .x 1}}|{{.x | print "v"}}|{{print .missing .x}}'],
    ['printf', '{{printf "%s|%v|%d|%t|%%" .s .x 3 .b}} {{printf "%s %s %s %s" .x .b .n .l}} {{printf "%d %d %d" .x .s .l}} {{printf "%v %v %s" .m .missing .m}} {{printf "%t %t" .s .x}}{{printf "%s"}}{{printf "x" 1 .n .s}}{{.s | printf "<%s>"}}'],
    ['printf with a json.Number format', '{{printf .x}}'],
    ['template: float literal', '{{ 1.5 }}'], ['template: printf with a width', '{{printf "%5d" 3}}'], ['template: html', '{{html .s}}'], ['template: define', '{{define "x"}}a{{end}}'],
    ['template: hex literal', '{{0x10}}'], ['template: char literal', "{{'a'}}"],
  ];
  for (const [note, t] of templates) add(note.startsWith('template:') ? note : `template: ${note}`, 'strings.render_template', t, vars);
  return out;
}

type Outcome = { kind: 'value'; value: unknown } | { kind: 'error'; message: string } | { kind: 'refused'; message: string };

/** JSON with bigints written as numbers (CurrentTime in nanoseconds). */
const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `@@${x}@@` : x)).replace(/"@@(-?\d+)@@"/g, '$1');

describe('x509, key and template builtins: embedded engine vs real OPA', () => {
  let opa: ManagedProcess;
  let opaUrl: string;
  let work: string;
  let engine: WasmPolicyEngine;
  const mutationEngines = {} as Record<'certs' | 'csrs', WasmPolicyEngine>;
  let fixtures: X509Fixtures;

  beforeAll(async () => {
    const opaPath = await ensureOpa();
    work = await mkdtemp(join(tmpdir(), 'toolgate-x509-diff-'));
    const certs = join(work, 'certs');
    await mkdir(certs);
    fixtures = await makeX509Fixtures(certs);
    const src = join(work, 'src');
    await mkdir(src);
    await writeFile(join(src, 'diff.rego'), POLICY);
    await buildBundle({ opaPath, sourceDir: src, outFile: join(work, 'bundle.tar.gz'), revision: 'diff', entrypoints: ['diff/r', 'diff/certs', 'diff/csrs'] });
    engine = new WasmPolicyEngine('diff/r', { strictBuiltinErrors: true });
    await engine.activate(await loadBundleFile(join(work, 'bundle.tar.gz')));
    for (const ep of ['certs', 'csrs'] as const) {
      mutationEngines[ep] = new WasmPolicyEngine(`diff/${ep}`);
      await mutationEngines[ep].activate(await loadBundleFile(join(work, 'bundle.tar.gz')));
    }
    const port = await freePort();
    opa = startProcess({ name: 'opa-x509-diff', command: opaPath, args: ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error'], logDir: work });
    opaUrl = `http://127.0.0.1:${port}`;
    await waitForHttp(`${opaUrl}/health`, { process: opa, timeoutMs: 30_000 });
    const put = await fetch(`${opaUrl}/v1/policies/diff`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: POLICY });
    expect(put.ok).toBe(true);
  });
  afterAll(async () => {
    await opa?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('gives the same answers as OPA, or refuses with its reason the listed cases', async () => {
    const rows: string[] = [];
    const disagreements: string[] = [];
    const refusedNotes: string[] = [];
    for (const c of cases(fixtures)) {
      const input = json({ fn: c.fn, a: c.a });
      let embedded: Outcome;
      try {
        const { result } = await engine.evaluate({} as JsonObject, wholeInput(input));
        embedded = { kind: 'value', value: (result as { value?: unknown } | undefined)?.value };
      } catch (err) {
        const message = (err as Error).message;
        embedded = message.includes('not implemented by the embedded engine') ? { kind: 'refused', message } : { kind: 'error', message };
      }
      const res = await fetch(`${opaUrl}/v1/data/diff/r?strict-builtin-errors=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"input":${input}}` });
      const body = (await res.json()) as { result?: { value?: unknown }; message?: string };
      const real: Outcome = res.ok ? { kind: 'value', value: body.result?.value } : { kind: 'error', message: body.message ?? `HTTP ${res.status}` };
      const agree = (embedded.kind === 'error' && real.kind === 'error') || (embedded.kind === 'value' && real.kind === 'value' && sameValue(embedded.value, real.value));
      if (embedded.kind === 'refused') refusedNotes.push(c.note);
      else if (!agree) disagreements.push(`${c.note}: embedded ${JSON.stringify(embedded).slice(0, 300)} / OPA ${JSON.stringify(real).slice(0, 300)}`);
      rows.push(`${agree ? 'agree  ' : embedded.kind === 'refused' ? 'refused' : 'DIFFER '} ${c.fn} ${c.note}`);
    }
    process.stdout.write(`${rows.join('\n')}\n`);
    expect(disagreements).toEqual([]);
    expect(refusedNotes.sort()).toEqual(Object.keys(REFUSED).sort());
  }, 300_000);

  it('accepts and refuses the same mutated certificates and CSRs as OPA, and reads the same values from them', async () => {
    // Deterministic: one to three random bytes replaced in each DER (mulberry32, fixed seed)
    let seed = 20;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const mutate = (names: string[], count: number): string[] =>
      Array.from({ length: count }, () => {
        const der = Buffer.from(fixtures.der(names[Math.floor(random() * names.length)] as string), 'base64');
        for (let k = 1 + Math.floor(random() * 3); k > 0; k--) der[Math.floor(random() * der.length)] = Math.floor(random() * 256);
        return der.toString('base64');
      });
    const input = { certs: mutate(['root.crt', 'int.crt', 'leaf.crt', 'pss.crt', 'v1.crt', 'nc.crt'], 300), csrs: mutate(['attrs.csr', 'int.csr', 'leaf.csr'], 200) };
    for (const ep of ['certs', 'csrs'] as const) {
      const embedded = (await mutationEngines[ep].evaluate(input as unknown as JsonObject, wholeInput(JSON.stringify(input)))).result as { i: number; v: unknown }[];
      const res = await fetch(`${opaUrl}/v1/data/diff/${ep}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
      const real = ((await res.json()) as { result: { i: number; v: unknown }[] }).result;
      const parsedByOpa = real.map((r) => r.i);
      const parsedEmbedded = new Set(embedded.map((r) => r.i));
      const onlyOpa = parsedByOpa.filter((i) => !parsedEmbedded.has(i)).map((i) => `${ep}[${i}] ${input[ep][i]}`);
      expect(onlyOpa).toEqual([]);
      expect(embedded.map((r) => r.i)).toEqual(parsedByOpa);
      // both accept some and refuse some, or the comparison would show little
      expect(parsedByOpa.length).toBeGreaterThan(input[ep].length / 10);
      expect(parsedByOpa.length).toBeLessThan(input[ep].length);
      const differing = embedded.filter((r, k) => !sameValue(r.v, real[k]?.v)).map((r) => r.i);
      expect(differing).toEqual([]);
    }
  }, 300_000);
});
