import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/authz/bundle/build-bundle.js';
import { loadBundleFile } from '../../src/authz/bundle/bundle.js';
import { WasmPolicyEngine } from '../../src/authz/policy/wasm-engine.js';
import { ensureOpa } from '../../src/toolchain/install.js';

/**
 * The embedded engine's host builtins as OPA defines them where OPA's own YAML cases cannot show it: one clock
 * per evaluation, strict builtin errors, refusal at load. Each policy is compiled with the real `opa build -t wasm`.
 */
describe('embedded engine: host builtin semantics', () => {
  let work: string;
  let n = 0;

  async function engineFor(rego: string, entrypoint: string, options: { strictBuiltinErrors?: boolean } = {}): Promise<WasmPolicyEngine> {
    const dir = join(work, `p${n++}`);
    await mkdir(join(dir, 'src'), { recursive: true });
    await writeFile(join(dir, 'src', 'policy.rego'), rego);
    await buildBundle({ opaPath: await ensureOpa(), sourceDir: join(dir, 'src'), outFile: join(dir, 'b.tar.gz'), revision: `r${n}`, entrypoints: [entrypoint] });
    const engine = new WasmPolicyEngine(entrypoint, options);
    await engine.activate(await loadBundleFile(join(dir, 'b.tar.gz')));
    return engine;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolgate-wasm-builtins-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('time.now_ns is one value within an evaluation and moves between evaluations', async () => {
    const engine = await engineFor(
      'package t\n\nstamps := [t | some i in numbers.range(1, 50); t := time.now_ns()]\n\nresult := {"distinct": count({t | some t in stamps}), "first": stamps[0]}\n',
      't/result',
    );
    const a = (await engine.evaluate({})).result as { distinct: number; first: number };
    await new Promise((r) => setTimeout(r, 5));
    const b = (await engine.evaluate({})).result as { distinct: number; first: number };
    expect(a.distinct).toBe(1);
    expect(b.distinct).toBe(1);
    expect(b.first).toBeGreaterThan(a.first);
    expect(Math.abs(a.first / 1e6 - Date.now())).toBeLessThan(60_000);
  });

  it('a builtin error makes the call undefined by default, and fails the evaluation naming the builtin in strict mode', async () => {
    const rego = 'package t\n\ndefault decoded := "undefined"\n\ndecoded := io.jwt.decode(input.token)\n';
    const lenient = await engineFor(rego, 't/decoded');
    expect((await lenient.evaluate({ token: 'not-a-jwt' })).result).toBe('undefined');
    const strict = await engineFor(rego, 't/decoded', { strictBuiltinErrors: true });
    await expect(strict.evaluate({ token: 'not-a-jwt' })).rejects.toThrow(/io\.jwt\.decode: encoded JWT had no period separators/);
  });

  it('fails the evaluation, strict or not, when a builtin meets what the engine does not reproduce; a Go error stays undefined', async () => {
    // A deny rule: an undefined template result would make it silently not match, so "not reproduced" must fail the decision.
    const rego = 'package t\n\ndefault deny := false\n\ndeny if strings.render_template(input.template, {"n": 1}) == "1"\n';
    const lenient = await engineFor(rego, 't/deny');
    expect((await lenient.evaluate({ template: '{{.n}}' })).result).toBe(true);
    await expect(lenient.evaluate({ template: '{{html .n}}' })).rejects.toThrow(/strings\.render_template: not implemented by the embedded engine: .*html/);
    // {{eq .n 1}} is Go's own error (json.Number against int): undefined without strict builtin errors, as OPA
    expect((await lenient.evaluate({ template: '{{eq .n 1}}' })).result).toBe(false);
  });

  it('uuid.rfc4122 gives one value per key within an evaluation and new ones across evaluations', async () => {
    const engine = await engineFor('package t\n\nids := [uuid.rfc4122("k"), uuid.rfc4122("k"), uuid.rfc4122("other")]\n', 't/ids');
    const [a, b, c] = (await engine.evaluate({})).result as string[];
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    const [next] = (await engine.evaluate({})).result as string[];
    expect(next).not.toBe(a);
  });

  it('refuses at load a bundle that needs a builtin the engine does not provide, naming it, and keeps the active bundle', async () => {
    const engine = await engineFor('package t\n\nallow := true\n', 't/allow');
    const dir = join(work, 'needs-lookup');
    await mkdir(join(dir, 'src'), { recursive: true });
    await writeFile(join(dir, 'src', 'policy.rego'), 'package t\n\nallow if "10.0.0.1" in net.lookup_ip_addr(input.host)\n');
    await buildBundle({ opaPath: await ensureOpa(), sourceDir: join(dir, 'src'), outFile: join(dir, 'b.tar.gz'), revision: 'needs-dns', entrypoints: ['t/allow'] });
    await expect(engine.activate(await loadBundleFile(join(dir, 'b.tar.gz')))).rejects.toThrow(/bundle needs-dns: .*needs a builtin the embedded engine does not provide: net\.lookup_ip_addr \(/);
    expect((await engine.evaluate({})).result).toBe(true);
  });

  it('hands sets to the policy as sets (net.cidr_expand, net.cidr_merge)', async () => {
    const engine = await engineFor(
      'package t\n\nresult := {"has": net.cidr_expand("10.0.0.0/30")["10.0.0.2"], "merged": net.cidr_merge({"10.0.0.0/25", "10.0.0.128/25"}), "n": count(net.cidr_expand("10.0.0.0/30"))}\n',
      't/result',
    );
    expect((await engine.evaluate({})).result).toEqual({ has: '10.0.0.2', merged: ['10.0.0.0/24'], n: 4 });
  });
});
