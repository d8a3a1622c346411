import { closeSync, readFileSync, writeSync } from 'node:fs';
import { CALL_RECEIVED_LINE, isSandboxCall, READY_FD_ENV, READY_LINE, REPORTED_LINE } from '../shared/sandbox-call.js';
import { MAX_RESULT_BYTES, ToolError, type ResultEnvelope } from './envelope.js';
import { prepareRunnerTelemetry } from './telemetry.js';
import { TOOL_REGISTRY } from './tools/registry.js';
import { waitForClaim } from './claim.js';
import { settle } from './settle.js';
import type { ToolImplementation } from './tools/tool.js';

/**
 * The tool runner: the command a Job's container (or a local sandbox) runs. It runs exactly one tool, named
 * by TOOL_NAME, for exactly one call, and reports one result envelope for that call: by POST to
 * TOOL_RESULT_URL with the per-call token in TOOL_RESULT_TOKEN_FILE (Jobs: both files come from the call's
 * Secret), else as the last line on stdout (the sandbox's pipe).
 *
 * Everything that does not depend on the call (loading the tool's code, starting the span exporter) is done
 * first, then the call is read, so a sandbox started ahead of its call (the local runner's pool) has paid
 * for it before the call arrives; with TOOL_READY_FD set, the runner then says so on that descriptor.
 *
 * The call, from the first of:
 * - TOOL_CALL_STDIN=1 (the local sandbox): all of stdin is one JSON object `{call_id, traceparent?,
 *   arguments}` (src/shared/sandbox-call.ts), at most MAX_STDIN_BYTES; a runner started before its call waits
 *   there, and neither bwrap's command line nor any environment ever sees the arguments;
 * - CALL_ID and TRACEPARENT from the environment, the arguments from TOOL_PARAMS_URL (Jobs whose arguments
 *   are too large for the Secret), TOOL_PARAMS_STDIN=1 (all of stdin), TOOL_PARAMS_FILE (Jobs: the call's
 *   Secret), TOOL_PARAMS (for running by hand); else {}.
 * A warm pod (TOOL_CLAIM_URL set) loads the same way, waits for its start-up to settle (settle.ts: under a CPU
 * limit it would spend the call's quota), then gets its one call from the executor's claim channel (claim.ts):
 * call id, traceparent, arguments, result URL and token.
 * Exit status: 0 ok, 1 the tool reported an error (bad arguments included), 2 the environment is unusable
 * (missing settings, an unreadable Secret or stdin).
 */
async function main(): Promise<number> {
  const toolName = process.env.TOOL_NAME;
  const callFromStdin = flag('TOOL_CALL_STDIN');
  const paramsFromStdin = flag('TOOL_PARAMS_STDIN');
  const fromClaim = Boolean(process.env.TOOL_CLAIM_URL);
  if (!toolName || (!callFromStdin && !fromClaim && !process.env.CALL_ID)) {
    process.stderr.write(`tool runner: TOOL_NAME and ${callFromStdin ? 'a call on stdin' : 'CALL_ID'} must be set\n`);
    return 2;
  }
  // Before the call: the tool's code (its failure is the call's error, reported with its id) and telemetry.
  const load = TOOL_REGISTRY[toolName];
  const tool: Promise<ToolImplementation> = load ? load() : Promise.reject(new ToolError(`this runner has no tool "${toolName}"`, 'unknown_tool'));
  tool.catch(() => undefined);
  const startTelemetry = await prepareRunnerTelemetry(process.env.OTEL_EXPORTER_OTLP_ENDPOINT);
  await tool.catch(() => undefined);
  const readyFd = signal(readyFdFromEnv(), READY_LINE);

  let callId = process.env.CALL_ID ?? '';
  let traceparent = process.env.TRACEPARENT;
  let token: string | undefined;
  let params: unknown;
  let rawParams = process.env.TOOL_PARAMS ?? '{}';
  try {
    if (process.env.TOOL_RESULT_TOKEN_FILE) token = readFileSync(process.env.TOOL_RESULT_TOKEN_FILE, 'utf8').trim();
    if (process.env.TOOL_PARAMS_FILE) rawParams = readFileSync(process.env.TOOL_PARAMS_FILE, 'utf8');
  } catch (err) {
    process.stderr.write(`tool runner: cannot read the call's Secret: ${message(err)}\n`);
    return 2;
  }
  if (callFromStdin || paramsFromStdin) {
    try {
      const text = await readStdin(MAX_STDIN_BYTES);
      if (text.trim() === '') throw new Error(`stdin is empty (${callFromStdin ? 'the call' : 'the arguments'} must be a JSON object)`);
      if (callFromStdin) {
        const call: unknown = JSON.parse(text);
        if (!isSandboxCall(call)) throw new Error('not a call: {"call_id": string, "traceparent"?: string, "arguments": object} expected');
        ({ call_id: callId, traceparent } = call);
        params = call.arguments;
      } else {
        rawParams = text;
      }
    } catch (err) {
      process.stderr.write(`tool runner: cannot read ${callFromStdin ? 'the call' : 'the arguments'} from stdin: ${message(err)}\n`);
      return 2;
    }
  }
  // A warm pod: its one call comes from the executor's claim channel, now that the tool is loaded.
  if (process.env.TOOL_CLAIM_URL) {
    try {
      await settle();
      const claim = await waitForClaim(process.env.TOOL_CLAIM_URL, process.env.TOOL_CLAIM_TOKEN_FILE ?? '');
      ({ call_id: callId, traceparent, result_token: token, arguments: params } = claim);
      process.env.TOOL_RESULT_URL = claim.result_url;
    } catch (err) {
      process.stderr.write(`tool runner: no call for this warm pod: ${message(err)}\n`);
      return 2;
    }
  }

  signal(readyFd, CALL_RECEIVED_LINE);
  const telemetry = startTelemetry({ tool: toolName, callId, traceparent });
  let envelope: ResultEnvelope;
  const controller = new AbortController();
  try {
    if (process.env.TOOL_PARAMS_URL) rawParams = await fetchParams(process.env.TOOL_PARAMS_URL, token ?? '');
    if (params === undefined) params = JSON.parse(rawParams);
    if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new ToolError('the arguments must be a JSON object', 'bad_params');
    const run = await tool;
    process.once('SIGTERM', () => controller.abort());
    const result = await run(params as Record<string, unknown>, { callId, signal: controller.signal, apiCall: telemetry.apiCall });
    envelope = { call_id: callId, status: 'ok', result };
    if (Buffer.byteLength(JSON.stringify(envelope)) > MAX_RESULT_BYTES) {
      envelope = { call_id: callId, status: 'error', error: { message: `result exceeds ${MAX_RESULT_BYTES} bytes`, code: 'result_too_large' } };
    }
  } catch (err) {
    const e = err instanceof ToolError ? err : new ToolError(message(err), 'crash');
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
  signal(readyFd, REPORTED_LINE);
  closeFd(readyFd);
  return envelope.status === 'ok' ? 0 : 1;
}

function flag(name: string): boolean {
  const v = process.env[name];
  if (v === undefined || v === '') return false;
  if (v !== '1') throw new Error(`${name} must be 1 or unset, not "${v.slice(0, 20)}"`);
  return true;
}

/** TOOL_READY_FD: where the local runner listens for "ready" and "call received" (src/shared/sandbox-call.ts). */
function readyFdFromEnv(): number | undefined {
  const fd = Number(process.env[READY_FD_ENV]);
  return Number.isInteger(fd) && fd >= 3 ? fd : undefined;
}

function signal(fd: number | undefined, line: string): number | undefined {
  if (fd === undefined) return undefined;
  try {
    writeSync(fd, line);
    return fd;
  } catch {
    // Nobody listens (the executor stopped caring): the call on stdin decides what happens next.
    return undefined;
  }
}

function closeFd(fd: number | undefined): void {
  try {
    if (fd !== undefined) closeSync(fd);
  } catch {
    // already closed
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Bound on a call read from stdin: far above what reaches a tool (the gateway's bodies are 2 MiB by
 * default, authz takes at most 8 MiB), low enough that a runaway writer cannot fill the runner's memory.
 */
const MAX_STDIN_BYTES = 16 * 1024 * 1024;

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
    process.stderr.write(`tool runner: ${message(err)}\n`);
    process.exit(2);
  },
);
