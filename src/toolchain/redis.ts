import { ensureDebianCommand } from './debian-package.js';

/**
 * Redis from Debian's redis-server package: the shared store of history and approvals (issue 18). Only the
 * binary is used: tests and the bench start their own redis-server on a loopback port (the package's own
 * service, if the package starts one, is not what toolgate talks to).
 */
export const ensureRedisServer = (): Promise<string> => ensureDebianCommand('redis-server', 'redis-server');
