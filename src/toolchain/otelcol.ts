import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './install.js';
import { VERSIONS } from './versions.js';

/**
 * An OpenTelemetry Collector built with the official builder (ocb) from the Go module proxy: OTLP receiver,
 * batch and resource processors, and OTLP (a tracing backend), debug and file exporters. (The contrib
 * Prometheus exporter has no release matching this version on the module proxy; services expose /metrics.)
 * `otelcorecol` itself cannot be `go install`ed, so this is the supported way to get a collector here.
 */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

export async function ensureOtelCollector(): Promise<string> {
  const v = VERSIONS.otelCollector;
  const target = join(CACHE_DIR, 'bin', `otelcol-toolgate-${v}`);
  if (existsSync(target)) return target;
  process.stderr.write(`[toolchain] building the OpenTelemetry Collector ${v} with the builder (first time only)\n`);
  const work = join(CACHE_DIR, `otelcol-build-${v}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  await run('go', ['install', `go.opentelemetry.io/collector/cmd/builder@${v}`], work, { GOBIN: work, CGO_ENABLED: '0' });
  const core = (m: string): string => `  - gomod: go.opentelemetry.io/collector/${m} ${v}`;
  const contrib = (m: string): string => `  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/${m} ${v}`;
  writeFileSync(
    join(work, 'manifest.yaml'),
    [
      'dist:',
      '  name: otelcol-toolgate',
      '  description: OpenTelemetry Collector for toolgate tests and the compose setup',
      `  output_path: ${join(work, 'out')}`,
      'receivers:',
      core('receiver/otlpreceiver'),
      'processors:',
      core('processor/batchprocessor'),
      contrib('processor/resourceprocessor'),
      'exporters:',
      core('exporter/debugexporter'),
      core('exporter/otlpexporter'),
      contrib('exporter/fileexporter'),
      '',
    ].join('\n'),
  );
  await run(join(work, 'builder'), ['--config', join(work, 'manifest.yaml')], work, { CGO_ENABLED: '0' });
  mkdirSync(join(CACHE_DIR, 'bin'), { recursive: true });
  renameSync(join(work, 'out', 'otelcol-toolgate'), target);
  return target;
}
