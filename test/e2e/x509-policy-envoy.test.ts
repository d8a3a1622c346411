import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSeedBundle, policiesWithData, startStack, type Stack } from './stack.js';

const run = promisify(execFile);

/**
 * A policy that reads the client certificate Envoy verified (input.attributes.source.certificate) with
 * crypto.x509.parse_certificates and explains its refusal with strings.render_template, through a real Envoy
 * on the embedded engine and on the remote engine (a real OPA): the same decisions and the same reasons.
 */
const QUARANTINE = `package agent.authz

import rego.v1

client_cert := crypto.x509.parse_certificates(urlquery.decode(input.attributes.source.certificate))[0]

quarantined if client_cert.Subject.CommonName in data.quarantined_names

deny if quarantined

reasons contains msg if {
	quarantined
	msg := strings.render_template(
		"certificate {{.cn}} ({{range $i, $u := .uris}}{{if $i}}, {{end}}{{$u}}{{end}}; serial {{.serial}}; {{if .ca}}a CA{{else}}not a CA{{end}}) is quarantined",
		{"cn": client_cert.Subject.CommonName, "uris": client_cert.URIStrings, "serial": client_cert.SerialNumber, "ca": client_cert.IsCA},
	)
}
`;

describe('a policy reading the client certificate with crypto.x509, through Envoy, on both engines', () => {
  let work: string;
  const stacks: Record<'embedded' | 'remote', Stack | undefined> = { embedded: undefined, remote: undefined };
  const readStaging = { namespace: 'staging', name: 'api-server' };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolgate-x509-policy-'));
    const src = await policiesWithData(work, 'policies', { authorized_agents: ['ops-bot', 'spiffe://toolgate.local/agent/ops-bot'], quarantined_names: ['quarantined'] });
    await writeFile(join(src, 'agent', 'authz', 'quarantine.rego'), QUARANTINE);
    const wasm = await buildSeedBundle(work, 'x509-policy', src, 'wasm');
    const rego = await buildSeedBundle(work, 'x509-policy', src, 'rego');
    stacks.embedded = await startStack({ engine: 'embedded', bundle: { file: wasm } });
    stacks.remote = await startStack({ engine: 'remote', remoteBundle: rego });
  }, 600_000);
  afterAll(async () => {
    await stacks.embedded?.stop();
    await stacks.remote?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const engine of ['embedded', 'remote'] as const) {
    it(`${engine}: allows the agent's usual certificate and refuses the quarantined one, with the rendered reason`, async () => {
      const stack = stacks[engine] as Stack;
      const usual = await stack.certFor('spiffe://toolgate.local/agent/ops-bot', 'ops-bot');
      const ok = await stack.call('/v1/tools/k8s_get_deployment', readStaging, { cert: usual });
      expect(ok.status).toBe(200);

      const bad = await stack.certFor('spiffe://toolgate.local/agent/ops-bot', 'quarantined');
      const { stdout } = await run('openssl', ['x509', '-in', bad.certPath, '-noout', '-serial']);
      const serial = BigInt(`0x${stdout.trim().split('=')[1]}`).toString();
      const refused = await stack.call('/v1/tools/k8s_get_deployment', readStaging, { cert: bad });
      expect(refused.status).toBe(403);
      expect(refused.json.error.code).toBe('policy_denied');
      expect(refused.json.error.reasons).toContain(`certificate quarantined (spiffe://toolgate.local/agent/ops-bot; serial ${serial}; not a CA) is quarantined`);
      expect(refused.json.error.policy_revision).toBe('x509-policy');
    });
  }
});
