import { ToolError } from '../envelope.js';
import type { ToolImplementation } from './tool.js';

/** Returns its message: the no-op tool for trying the gateway and for measuring the call path. */
export const echo: ToolImplementation = async (args) => {
  const message = String(args.message ?? '');
  return { message, length: message.length };
};

export const sleep: ToolImplementation = async (args, ctx) => {
  const seconds = Number(args.seconds ?? 0);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, seconds * 1000);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new ToolError('cancelled', 'cancelled'));
    });
  });
  return { slept: seconds };
};

/** Exits with a chosen status after writing to stderr: a tool that crashes, for tests of that path. */
export const fail: ToolImplementation = async (args) => {
  const code = Number(args.exit_code ?? 3);
  process.stderr.write(`${String(args.message ?? 'failing on purpose')}\n`);
  process.exit(code);
};
