import { ensureDebianCommand } from './debian-package.js';

/** h2load drives the benchmarks' load (over HTTP/1.1, as agents call). */
export const ensureH2load = (): Promise<string> => ensureDebianCommand('h2load', 'nghttp2-client');
