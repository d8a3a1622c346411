import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../../shared/repo-paths.js';
import type { ToolDefinition } from '../../catalog/tool-catalog.js';
import { isResultEnvelope, type ResultEnvelope } from '../../runner/envelope.js';
import type { SandboxCall } from '../../shared/sandbox-call.js';
import type { Runner, ToolInvocation, ToolOutcome } from './runner.js';
import { cpuMillis, memoryBytes } from './sandbox/resource-quantity.js';
import { SandboxPool, type PoolTool } from './sandbox/sandbox-pool.js';
import { startSandbox, type SandboxResult, type SandboxStart, type StartedSandbox } from './sandbox/sandbox-process.js';

export interface LocalSandboxRunnerOptions {
  nodePath?: string;
  /** The tool runner's entry: default the bundle `npm run build` makes, else tsc's output (see runnerEntry). */
  runnerEntry?: string;
  bwrapPath?: string;
  /** The executor's span relay (see span-relay.ts): when set, the runner's spans join the call's trace. */
  spanSocket?: string;
  /** Sandboxes started ahead of calls (see sandbox-pool.ts); absent or all sizes 0: every call starts its own. */
  pool?: SandboxPoolSettings;
  /** A pre-started sandbox exited before any call took it. */
  onPoolEarlyExit?: (tool: string, stderr: string, retryInMs: number) => void;
}

export interface SandboxPoolSettings {
  /** Sandboxes kept waiting per tool. */
  size: number;
  /** Per-tool sizes, overriding `size` (0 turns the pool off for that tool). */
  tools?: Record<string, number>;
  /** Bound on sandboxes waiting over all tools. */
  maxTotal?: number;
}

/** Where a sandboxed runner finds the span relay. */
const SANDBOX_SPAN_SOCKET = '/run/toolgate/otlp.sock';

/** Room for the envelope's own JSON around a result of max_output_bytes. */
const ENVELOPE_OVERHEAD = 64 * 1024;

const DEFAULT_POOL_MAX_TOTAL = 16;

type PooledTool = ToolDefinition & PoolTool;

/**
 * The embedded default on one machine: every call runs in a tool-runner process of its own, in a sandbox of
 * its own (see sandbox-process.ts), with the tool's declared network, limits and timeout. The sandbox is
 * started for the tool, either when the call arrives or ahead of it (the pool): everything about the call
 * (its id, trace context and arguments) goes in on the process's stdin (TOOL_CALL_STDIN=1), never in its
 * environment: that would put it on bwrap's command line, readable by every local user in
 * /proc/<pid>/cmdline and limited to 128 KiB. The result comes back on the process's stdout pipe, which only
 * that process holds. Either way a sandbox serves exactly one call and exits.
 */
export class LocalSandboxRunner implements Runner {
  readonly kind = 'local' as const;
  private readonly nodePath: string;
  private readonly runnerEntry: string;
  private readonly pool: SandboxPool<PooledTool> | undefined;
  /** Sandboxes whose cgroup is still being removed, for close() to wait for. */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(private readonly opts: LocalSandboxRunnerOptions = {}) {
    this.nodePath = opts.nodePath ?? process.execPath;
    this.runnerEntry = opts.runnerEntry ?? defaultRunnerEntry();
    const pool = opts.pool;
    if (pool && (pool.size > 0 || Object.values(pool.tools ?? {}).some((n) => n > 0))) {
      this.pool = new SandboxPool<PooledTool>({
        sizeFor: (tool) => pool.tools?.[tool.name] ?? pool.size,
        maxTotal: pool.maxTotal ?? DEFAULT_POOL_MAX_TOTAL,
        start: (tool) => startSandbox(this.sandboxFor(tool, `pool-${tool.name}-${randomBytes(6).toString('hex')}`)),
        ...(opts.onPoolEarlyExit ? { onEarlyExit: (tool: PooledTool, stderr: string, ms: number) => opts.onPoolEarlyExit?.(tool.name, stderr, ms) } : {}),
      });
    }
  }

  /** Starts the pools of these tools (the catalog's, when the executor starts). */
  warm(tools: ToolDefinition[]): void {
    this.pool?.warm(tools.map(pooled));
  }

  /** Sandboxes waiting per tool (empty without a pool). */
  poolStats(): Record<string, { waiting: number; ready: number }> {
    return this.pool?.stats() ?? {};
  }

  async run(inv: ToolInvocation): Promise<ToolOutcome> {
    const exec = inv.tool.execution;
    const tool = pooled(inv.tool);
    const call: SandboxCall = { call_id: inv.callId, ...(inv.traceparent ? { traceparent: inv.traceparent } : {}), arguments: inv.arguments };
    const deadline = performance.now() + exec.timeout_seconds * 1000;
    // Pooled sandboxes were started with the catalog's settings: a call whose obligations tighten them runs in
    // a cold sandbox started with its own, and leaves the pool alone (taking or refilling with other settings
    // would replace the catalog's sandboxes, as a new catalog does).
    const usePool = inv.obligations === undefined;
    const pooledSandbox = usePool ? this.pool?.take(tool) : undefined;
    inv.observe?.({ kind: 'sandbox.started' });
    let r = await this.serve(tool, pooledSandbox ?? (await this.startCold(tool, inv.callId)), call, deadline, inv.signal, usePool);
    if (pooledSandbox && !r.inputReceived && !r.cancelled && !r.timedOut) {
      // The pre-started sandbox died before it read the call (killed while waiting, just as it was taken):
      // the call never ran, so it runs once in a sandbox of its own, within what is left of its deadline.
      r = await this.serve(tool, await this.startCold(tool, inv.callId), call, deadline, inv.signal, usePool);
    }

    const durationMs = r.durationMs;
    inv.observe?.({ kind: 'sandbox.exited', exitCode: r.exitCode, durationMs });
    if (r.cancelled) return { status: 'cancelled', durationMs };
    if (r.timedOut) return { status: 'timeout', durationMs };
    if (r.outputExceeded) return { status: 'failed', exitCode: null, error: `tool output exceeds ${exec.max_output_bytes} bytes`, durationMs };
    // The runner reported success and said so: its exit (status 0: the runner exits so after an ok report)
    // is not waited for (isSuccessFor decided it).
    if (r.reported) return { status: 'succeeded', result: (lastEnvelope(r.stdout) as { result: unknown }).result, durationMs };
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

  private startCold(tool: PooledTool, callId: string): Promise<StartedSandbox> {
    return startSandbox(this.sandboxFor(tool, `${callId}-${randomBytes(4).toString('hex')}`));
  }

  /** Gives the sandbox its call; once it has exited, its cleanup is tracked and the pool topped up. */
  private async serve(tool: PooledTool, sandbox: StartedSandbox, call: SandboxCall, deadline: number, signal: AbortSignal, refill: boolean): Promise<SandboxResult> {
    try {
      return await sandbox.use({ stdin: JSON.stringify(call), timeoutMs: Math.max(0, deadline - performance.now()), signal, isFinal: (stdout) => isSuccessFor(stdout, call.call_id) });
    } finally {
      // The cgroup's removal can lag the exit a little: not on the call's path, but waited for by close().
      const cleanup = sandbox.cleanedUp.finally(() => this.cleanups.delete(cleanup));
      this.cleanups.add(cleanup);
      if (refill) this.pool?.refill(tool);
    }
  }

  /** Kills the sandboxes still waiting in the pool and waits until every sandbox's cgroup is gone. */
  async close(): Promise<void> {
    await this.pool?.close();
    await Promise.all([...this.cleanups]);
  }

  /** A sandbox for this tool: everything but the call itself. Nothing here is secret or large (see above). */
  private sandboxFor(tool: ToolDefinition, name: string): SandboxStart {
    const exec = tool.execution;
    const memory = memoryBytes(exec.resources.memory);
    const env: Record<string, string> = {
      PATH: '/usr/bin:/bin',
      TOOL_NAME: tool.name,
      TOOL_CALL_STDIN: '1',
      // Keep V8's heap inside the cgroup's memory limit, so a big allocation fails as an error, not a kill.
      NODE_OPTIONS: `--max-old-space-size=${Math.max(16, Math.floor((memory / 1024 / 1024) * 0.75))}`,
    };
    if (this.opts.spanSocket) env.OTEL_EXPORTER_OTLP_ENDPOINT = `unix://${SANDBOX_SPAN_SOCKET}`;
    return {
      name,
      argv: [this.nodePath, this.runnerEntry],
      env,
      network: exec.network !== 'none',
      readOnlyPaths: [dirname(this.nodePath), join(REPO_ROOT, 'dist'), join(REPO_ROOT, 'node_modules'), join(REPO_ROOT, 'package.json')],
      maxOutputBytes: exec.max_output_bytes + ENVELOPE_OVERHEAD,
      limits: { memoryBytes: memory, cpuMillis: cpuMillis(exec.resources.cpu), pids: 64 },
      readyFd: true,
      ...(this.opts.spanSocket ? { sockets: [{ hostPath: this.opts.spanSocket, sandboxPath: SANDBOX_SPAN_SOCKET }] } : {}),
      ...(this.opts.bwrapPath ? { bwrapPath: this.opts.bwrapPath } : {}),
    };
  }
}

/**
 * The runner bundle (build/bundle-runner.ts: a few files instead of hundreds, which is most of a traced
 * runner's start-up), or the modules tsc compiled when only tsc ran (`npx tsc`, not `npm run build`).
 */
function defaultRunnerEntry(): string {
  const bundle = join(REPO_ROOT, 'dist', 'runner-bundle', 'main.js');
  return existsSync(bundle) ? bundle : join(REPO_ROOT, 'dist', 'src', 'runner', 'main.js');
}

/** The pool's view of a tool: a sandbox started for one set of settings serves only calls with the same. */
function pooled(tool: ToolDefinition): PooledTool {
  return { ...tool, settingsKey: JSON.stringify([tool.name, tool.execution]) };
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

/** The last line of the runner's output is an ok envelope for this call (see runSandboxed's isFinal). */
function isSuccessFor(stdout: string, callId: string): boolean {
  const envelope = lastEnvelope(stdout);
  return envelope?.status === 'ok' && envelope.call_id === callId;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 500);
}
