import { readFileSync } from 'node:fs';

/** A warm pod's one call, as the executor's claim channel hands it over. */
export interface Claim {
  call_id: string;
  arguments: Record<string, unknown>;
  result_url: string;
  result_token: string;
  traceparent?: string;
}

/**
 * A warm pod waits here for its one call: it asks the executor with its own token (from its own Secret) and
 * is held until a call claims it (204: asked again). Refused (403: the executor no longer knows this pod,
 * e.g. it restarted; 410: the claim was already delivered) ends the runner: a pod never serves two calls.
 * Network errors (executor restarting) are retried; the pod's lifetime limit bounds the wait.
 */
export async function waitForClaim(url: string, tokenFile: string): Promise<Claim> {
  const token = readFileSync(tokenFile, 'utf8').trim();
  for (;;) {
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(60_000) });
    } catch {
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    if (res.status === 204) continue;
    if (res.status !== 200) throw new Error(`the executor refused this pod's claim: ${res.status} ${(await res.text()).slice(0, 200)}`);
    const claim = (await res.json()) as Claim;
    if (typeof claim.call_id !== 'string' || typeof claim.result_url !== 'string' || typeof claim.result_token !== 'string' || claim.arguments === null || typeof claim.arguments !== 'object') {
      throw new Error('the executor sent a malformed claim');
    }
    return claim;
  }
}
