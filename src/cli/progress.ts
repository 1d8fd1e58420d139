/**
 * Progress of a long command on stderr, hand-written (no dependency): a bar redrawn in place
 * with \r when the stream is a terminal, an occasional plain line otherwise (CI logs, files),
 * so stdout stays free for the result (`--json`).
 */
export interface ProgressBar {
  /**
   * Shows `done` of `total`: on a terminal `[####----] 50% <text>`, elsewhere `line` at most once
   * per `lineIntervalMs`, and always when done reaches total.
   */
  draw(done: number, total: number, text: string, line?: string): void;
  /** Erases the bar (terminal) so other output starts on a clean line. */
  clear(): void;
}

export interface ProgressBarOptions {
  /** Without a terminal, at most one line per this many ms. Default 5000. */
  lineIntervalMs?: number;
  /** Milliseconds since the epoch; tests move it. Default Date.now. */
  nowMs?: () => number;
}

const BAR_WIDTH = 30;

export function createProgressBar(
  stream: NodeJS.WriteStream,
  options: ProgressBarOptions = {},
): ProgressBar {
  const lineIntervalMs = options.lineIntervalMs ?? 5000;
  const nowMs = options.nowMs ?? Date.now;
  let drawn = false;
  let lastLineMs = -Infinity;
  return {
    draw(done, total, text, line = text) {
      const fraction = total <= 0 ? 1 : Math.min(1, done / total);
      if (stream.isTTY) {
        const filled = Math.round(fraction * BAR_WIDTH);
        const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
        stream.write(`\r[${bar}] ${Math.floor(fraction * 100)}% ${text}\x1b[K`);
        drawn = true;
      } else if (done >= total || nowMs() - lastLineMs >= lineIntervalMs) {
        lastLineMs = nowMs();
        stream.write(`${line}\n`);
      }
    },
    clear() {
      if (!drawn) return;
      stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
