import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../../shared/repo-paths.js';
import { isResultEnvelope, type ResultEnvelope } from '../../runner/envelope.js';
import type { Runner, ToolInvocation, ToolOutcome } from './runner.js';
import { cpuMillis, memoryBytes } from './sandbox/resource-quantity.js';
import { runSandboxed } from './sandbox/sandbox-process.js';

export interface LocalSandboxRunnerOptions {
  nodePath?: string;
  /** The tool runner's entry (compiled JS). */
  runnerEntry?: string;
  bwrapPath?: string;
  /** The executor's span relay (see span-relay.ts): when set, the runner's spans join the call's trace. */
  spanSocket?: string;
}

/** Where a sandboxed runner finds the span relay. */
const SANDBOX_SPAN_SOCKET = '/run/toolgate/otlp.sock';

/** Room for the envelope's own JSON around a result of max_output_bytes. */
const ENVELOPE_OVERHEAD = 64 * 1024;

/**
 * The embedded default on one machine: every call is a fresh tool-runner process in its own sandbox
 * (see sandbox-process.ts), with the tool's declared network, limits and timeout. The call's arguments go in
 * on the process's stdin (TOOL_PARAMS_STDIN=1), never in its environment: that would put them on bwrap's
 * command line, readable by every local user in /proc/<pid>/cmdline and limited to 128 KiB. The result comes
 * back on the process's stdout pipe, which only that process holds.
 */
export class LocalSandboxRunner implements Runner {
  readonly kind = 'local' as const;
  private readonly nodePath: string;
  private readonly runnerEntry: string;

  constructor(private readonly opts: LocalSandboxRunnerOptions = {}) {
    this.nodePath = opts.nodePath ?? process.execPath;
    this.runnerEntry = opts.runnerEntry ?? join(REPO_ROOT, 'dist', 'src', 'runner', 'main.js');
  }

  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    const exec = inv.tool.execution;
    const memory = memoryBytes(exec.resources.memory);
    // Nothing here is secret or large: it ends up on bwrap's command line (see sandbox-process.ts).
    const env: Record<string, string> = {
      PATH: '/usr/bin:/bin',
      TOOL_NAME: inv.tool.name,
      TOOL_PARAMS_STDIN: '1',
      CALL_ID: inv.callId,
      // Keep V8's heap inside the cgroup's memory limit, so a big allocation fails as an error, not a kill.
      NODE_OPTIONS: `--max-old-space-size=${Math.max(16, Math.floor((memory / 1024 / 1024) * 0.75))}`,
    };
    if (inv.traceparent) env.TRACEPARENT = inv.traceparent;
    if (this.opts.spanSocket) env.OTEL_EXPORTER_OTLP_ENDPOINT = `unix://${SANDBOX_SPAN_SOCKET}`;
    inv.observe?.({ kind: 'sandbox.started' });
    const r = await runSandboxed({
      name: `${inv.callId}-${randomBytes(4).toString('hex')}`,
      argv: [this.nodePath, this.runnerEntry],
      env,
      stdin: JSON.stringify(inv.arguments),
      network: exec.network !== 'none',
      readOnlyPaths: [dirname(this.nodePath), join(REPO_ROOT, 'dist'), join(REPO_ROOT, 'node_modules'), join(REPO_ROOT, 'package.json')],
      timeoutMs: exec.timeout_seconds * 1000,
      maxOutputBytes: exec.max_output_bytes + ENVELOPE_OVERHEAD,
      limits: { memoryBytes: memory, cpuMillis: cpuMillis(exec.resources.cpu), pids: 64 },
      ...(this.opts.spanSocket ? { sockets: [{ hostPath: this.opts.spanSocket, sandboxPath: SANDBOX_SPAN_SOCKET }] } : {}),
      signal: inv.signal,
      ...(this.opts.bwrapPath ? { bwrapPath: this.opts.bwrapPath } : {}),
    });

    const durationMs = r.durationMs;
    inv.observe?.({ kind: 'sandbox.exited', exitCode: r.exitCode, durationMs });
    if (r.cancelled) return { status: 'cancelled', durationMs };
    if (r.timedOut) return { status: 'timeout', durationMs };
    if (r.outputExceeded) return { status: 'failed', exitCode: null, error: `tool output exceeds ${exec.max_output_bytes} bytes`, durationMs };
    if (r.exitCode === 125 || (r.exitCode === null && r.signal === null)) {
      return { status: 'unavailable', error: `the local sandbox could not start: ${lastLine(r.stderr)}` };
    }
    const envelope = lastEnvelope(r.stdout);
    if (envelope && envelope.call_id !== inv.callId) {
      return { status: 'failed', exitCode: r.exitCode, error: 'the tool reported a result for another call', durationMs };
    }
    if (envelope?.status === 'ok' && r.exitCode === 0) return { status: 'succeeded', result: envelope.result, durationMs };
    if (envelope?.status === 'error') return { status: 'failed', exitCode: r.exitCode, error: envelope.error.message, durationMs };
    const cause = r.memoryLimitHit ? `memory limit of ${exec.resources.memory} exceeded` : lastLine(r.stderr) || 'no result reported';
    return { status: 'failed', exitCode: r.exitCode, error: `tool exited with status ${r.exitCode ?? r.signal}: ${cause}`, durationMs };
  }

  async close(): Promise<void> {}
}

function lastEnvelope(stdout: string): ResultEnvelope | undefined {
  const lines = stdout.trimEnd().split('\n');
  const last = lines[lines.length - 1];
  if (!last) return undefined;
  try {
    const v: unknown = JSON.parse(last);
    return isResultEnvelope(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 500);
}
