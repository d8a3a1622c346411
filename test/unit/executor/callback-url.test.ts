import { describe, expect, it } from 'vitest';
import { ExecutorConfigError, parseExecutorConfig } from '../../../src/executor/config.js';

const config = (callbackUrl: string): string => `
catalog: /etc/toolgate/catalog/tools.yaml
decision_key_file: /etc/toolgate/secrets/decision/key
runner:
  kind: kubernetes
  namespace: toolgate-exec
  image: toolgate/runner:test
  callback_url: "${callbackUrl}"
`;

const callbackUrl = (url: string, env: NodeJS.ProcessEnv = {}): string => {
  const c = parseExecutorConfig(config(url), '/etc/toolgate/executor.yaml', env);
  if (c.runner.kind !== 'kubernetes') throw new Error('not the Kubernetes runner');
  return c.runner.callback_url;
};

describe("the executor config's callback_url", () => {
  it('keeps a plain URL as it is', () => {
    expect(callbackUrl('http://toolgate-executor.toolgate.svc:9292', { POD_IP: '10.0.0.9' })).toBe('http://toolgate-executor.toolgate.svc:9292');
  });

  it("expands ${NAME} from the environment: each replica's own address", () => {
    expect(callbackUrl('http://${POD_IP}:9292', { POD_IP: '10.244.1.17' })).toBe('http://10.244.1.17:9292');
    expect(callbackUrl('https://${HOST_A}.${DOMAIN}:${PORT}/x', { HOST_A: 'a', DOMAIN: 'example.com', PORT: '8443' })).toBe('https://a.example.com:8443/x');
  });

  it('brackets an IPv6 address standing as the host', () => {
    expect(callbackUrl('http://${POD_IP}:9292', { POD_IP: 'fd00:10:244::17' })).toBe('http://[fd00:10:244::17]:9292');
  });

  it('refuses to start when a named variable is unset or empty, saying which and how to set it', () => {
    expect(() => callbackUrl('http://${POD_IP}:9292', {})).toThrow(ExecutorConfigError);
    expect(() => callbackUrl('http://${POD_IP}:9292', {})).toThrow(/callback_url uses \$\{POD_IP\}, but POD_IP is not set.*downward API.*status\.podIP/);
    expect(() => callbackUrl('http://${POD_IP}:9292', { POD_IP: ' ' })).toThrow(/POD_IP is not set/);
  });

  it('refuses a malformed placeholder or a URL that is not one once expanded', () => {
    expect(() => callbackUrl('http://${POD-IP}:9292', { 'POD-IP': '10.0.0.1' })).toThrow(/malformed placeholder/);
    expect(() => callbackUrl('http://${POD_IP:9292', { POD_IP: '10.0.0.1' })).toThrow(/malformed placeholder/);
    expect(() => callbackUrl('http://${HOST}:9292', { HOST: 'a b' })).toThrow(/not a valid URL/);
  });

  it('result_url (where Jobs post results, any replica) defaults to callback_url and expands the same way', () => {
    const runner = (extra: string, env: NodeJS.ProcessEnv): Record<string, unknown> => parseExecutorConfig(config('http://${POD_IP}:9292') + extra, '/e.yaml', env).runner as unknown as Record<string, unknown>;
    expect(runner('', { POD_IP: '10.0.0.9' }).result_url).toBe('http://10.0.0.9:9292');
    expect(runner('  result_url: "http://toolgate-executor.${NS}.svc:9292"\n', { POD_IP: '10.0.0.9', NS: 'tg' }).result_url).toBe('http://toolgate-executor.tg.svc:9292');
    expect(() => runner('  result_url: "http://${SVC}:9292"\n', { POD_IP: '10.0.0.9' })).toThrow(/result_url uses \$\{SVC\}/);
  });

  it('limits per agent: a quarter of max_in_flight by default, or as configured, per agent id too', () => {
    const base = 'catalog: /c.yaml\ndecision_key_file: /k\n';
    expect(parseExecutorConfig(`${base}max_in_flight: 64\n`, '/e.yaml')).toMatchObject({ max_in_flight_per_agent: 16, max_in_flight_by_agent: {}, idempotency: { max_bytes: 64 * 1024 * 1024 } });
    expect(parseExecutorConfig(`${base}max_in_flight: 2\n`, '/e.yaml').max_in_flight_per_agent).toBe(1);
    const c = parseExecutorConfig(`${base}max_in_flight_per_agent: 3\nmax_in_flight_by_agent: { ops-bot: 9 }\nidempotency: { max_bytes: 1024 }\n`, '/e.yaml');
    expect([c.max_in_flight_per_agent, c.max_in_flight_by_agent, c.idempotency.max_bytes]).toEqual([3, { 'ops-bot': 9 }, 1024]);
    expect(() => parseExecutorConfig(`${base}max_in_flight_by_agent: { ops-bot: 0 }\n`, '/e.yaml')).toThrow(/invalid executor config/);
  });
});
