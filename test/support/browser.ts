import { chromium, type Browser } from 'playwright-core';
import { ensureChromium } from '../../src/toolchain/chromium.js';

/**
 * A real headless Chromium (Debian's package, `npm run tools chromium`) driven by playwright-core. Chromium
 * refuses to start its sandbox as root: only then is it turned off (the pages it opens are the suite's own).
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = await ensureChromium();
  const asRoot = process.getuid?.() === 0;
  return chromium.launch({ executablePath, headless: true, args: asRoot ? ['--no-sandbox'] : [], timeout: 60_000 });
}
