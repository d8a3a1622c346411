import { readFileSync } from 'node:fs';
import { MAX_RESULT_BYTES, ToolError, type ResultEnvelope } from './envelope.js';
import { startRunnerTelemetry } from './telemetry.js';
import { TOOL_REGISTRY } from './tools/registry.js';
import { waitForClaim } from './claim.js';

/** A warm pod's result token, from its claim (a Job's comes from its call's Secret). */
let claimedToken: string | undefined;

/**
 * The tool runner: the command a Job's container (or a local sandbox) runs. It runs exactly one tool, named
 * by TOOL_NAME with its arguments, and reports one result envelope for CALL_ID: by POST to TOOL_RESULT_URL with
 * the per-call token in TOOL_RESULT_TOKEN_FILE (Jobs: both files come from the call's Secret), else as the
 * last line on stdout (the sandbox's pipe).
 *
 * Arguments, a JSON object, from the first of: TOOL_PARAMS_URL (Jobs whose arguments are too large for the
 * Secret), TOOL_PARAMS_STDIN=1 (the local sandbox: all of stdin, at most MAX_STDIN_PARAMS_BYTES, so neither
 * the size limit of one environment string nor /proc/<pid>/cmdline of bwrap ever sees them),
 * TOOL_PARAMS_FILE (Jobs: the call's Secret), TOOL_PARAMS (for running by hand); else {}.
 * A warm pod (TOOL_CLAIM_URL set) gets all of that from its one claim instead (see claim.ts), then runs as above.
 * Exit status: 0 ok, 1 the tool reported an error (bad arguments included), 2 the environment is unusable
 * (missing settings, an unreadable Secret or stdin).
 */
async function main(): Promise<number> {
  // A warm pod learns its call only now: load the tool first (the claim then runs it at once), then wait.
  if (process.env.TOOL_CLAIM_URL) {
    await TOOL_REGISTRY[process.env.TOOL_NAME ?? '']?.();
    if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) await import('../shared/tracing.js');
    const claim = await waitForClaim(process.env.TOOL_CLAIM_URL, process.env.TOOL_CLAIM_TOKEN_FILE ?? '');
    Object.assign(process.env, { CALL_ID: claim.call_id, TOOL_RESULT_URL: claim.result_url, TOOL_PARAMS: JSON.stringify(claim.arguments), ...(claim.traceparent ? { TRACEPARENT: claim.traceparent } : {}) });
    claimedToken = claim.result_token;
  }
  const callId = process.env.CALL_ID;
  const toolName = process.env.TOOL_NAME;
  if (!callId || !toolName) {
    process.stderr.write('tool runner: CALL_ID and TOOL_NAME must be set\n');
    return 2;
  }
  let token: string | undefined = claimedToken;
  let rawParams = process.env.TOOL_PARAMS ?? '{}';
  try {
    if (process.env.TOOL_RESULT_TOKEN_FILE) token = readFileSync(process.env.TOOL_RESULT_TOKEN_FILE, 'utf8').trim();
    if (process.env.TOOL_PARAMS_FILE) rawParams = readFileSync(process.env.TOOL_PARAMS_FILE, 'utf8');
  } catch (err) {
    process.stderr.write(`tool runner: cannot read the call's Secret: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const fromStdin = process.env.TOOL_PARAMS_STDIN;
  if (fromStdin !== undefined && fromStdin !== '') {
    try {
      if (fromStdin !== '1') throw new Error(`TOOL_PARAMS_STDIN must be 1 or unset, not "${fromStdin.slice(0, 20)}"`);
      rawParams = await readStdin(MAX_STDIN_PARAMS_BYTES);
      if (rawParams.trim() === '') throw new Error('stdin is empty (the arguments must be a JSON object)');
    } catch (err) {
      process.stderr.write(`tool runner: cannot read the arguments from stdin: ${err instanceof Error ? err.message : String(err)}\n`);
      return 2;
    }
  }
  const telemetry = await startRunnerTelemetry({ tool: toolName, callId, traceparent: process.env.TRACEPARENT, endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT });
  let envelope: ResultEnvelope;
  const controller = new AbortController();
  try {
    if (process.env.TOOL_PARAMS_URL) rawParams = await fetchParams(process.env.TOOL_PARAMS_URL, token ?? '');
    const params: unknown = JSON.parse(rawParams);
    if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new ToolError('the arguments must be a JSON object', 'bad_params');
    const load = TOOL_REGISTRY[toolName];
    if (!load) throw new ToolError(`this runner has no tool "${toolName}"`, 'unknown_tool');
    const tool = await load();
    process.once('SIGTERM', () => controller.abort());
    const result = await tool(params as Record<string, unknown>, { callId, signal: controller.signal, apiCall: telemetry.apiCall });
    envelope = { call_id: callId, status: 'ok', result };
    if (Buffer.byteLength(JSON.stringify(envelope)) > MAX_RESULT_BYTES) {
      envelope = { call_id: callId, status: 'error', error: { message: `result exceeds ${MAX_RESULT_BYTES} bytes`, code: 'result_too_large' } };
    }
  } catch (err) {
    const e = err instanceof ToolError ? err : new ToolError(err instanceof Error ? err.message : String(err), 'crash');
    envelope = { call_id: callId, status: 'error', error: { message: e.message, code: e.code } };
  }
  if (controller.signal.aborted) {
    // Stopped from outside (deadline, cancellation): the executor knows why from the Job; a result now would be a guess.
    await telemetry.end({ status: 'error', code: 'terminated', message: 'stopped by SIGTERM' }, 0);
    return 143;
  }
  const bytes = Buffer.byteLength(JSON.stringify(envelope));
  await telemetry.end(envelope.status === 'ok' ? { status: 'ok' } : { status: 'error', code: envelope.error.code ?? 'tool_error', message: envelope.error.message }, bytes);
  await report(envelope, token);
  return envelope.status === 'ok' ? 0 : 1;
}

/**
 * Bound on arguments read from stdin: far above what reaches a tool (the gateway's bodies are 2 MiB by
 * default, authz takes at most 8 MiB), low enough that a runaway writer cannot fill the runner's memory.
 */
const MAX_STDIN_PARAMS_BYTES = 16 * 1024 * 1024;

/** All of stdin (to EOF) as UTF-8; fails past `limit` bytes, without reading further. */
async function readStdin(limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error(`the arguments exceed ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Arguments too large for the call's Secret come over the same per-call authenticated channel. */
async function fetchParams(url: string, token: string): Promise<string> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new ToolError(`cannot fetch arguments: ${res.status}`, 'bad_params');
  return res.text();
}

async function report(envelope: ResultEnvelope, token: string | undefined): Promise<void> {
  const url = process.env.TOOL_RESULT_URL;
  const text = JSON.stringify(envelope);
  if (url && token) {
    // Retried briefly: the executor may be restarting; it dedupes by call id.
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: text, signal: AbortSignal.timeout(10_000) });
        if (res.ok) return;
        if (res.status < 500) throw new Error(`executor refused the result: ${res.status} ${await res.text()}`);
      } catch (err) {
        if (attempt >= 4) throw err;
      }
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
  await new Promise<void>((resolve) => process.stdout.write(`${text}\n`, () => resolve()));
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tool runner: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
