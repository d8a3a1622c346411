import { ensureDebianCommand } from './debian-package.js';

/** bubblewrap isolates each local tool call. */
export const ensureBubblewrap = (): Promise<string> => ensureDebianCommand('bwrap', 'bubblewrap');
