import { mkdir } from 'node:fs/promises';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium; CI installs it (.ci/run). Missing, browser tests fail rather than skip. */
const CHROMIUM = '/usr/bin/chromium';

/** Where browser tests save screenshots: the test run's artifacts (gitignored). */
export const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

/**
 * Headless Chromium as this machine runs it: as root it needs --no-sandbox, and without
 * --disable-background-networking it keeps trying to reach Google's hosts through a closed network.
 */
export async function launchChromium(): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
