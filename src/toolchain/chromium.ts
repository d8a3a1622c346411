import { ensureDebianCommand } from './debian-package.js';

/**
 * Headless Chromium from Debian's `chromium` package, for the approval page's browser test (playwright-core
 * drives it; its own browser downloads cannot reach the internet from these machines). Not in the default set.
 */
export const ensureChromium = (): Promise<string> => ensureDebianCommand('chromium', 'chromium');
