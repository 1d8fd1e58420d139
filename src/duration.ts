/** Parses "500ms", "5s", "5m", "2h", "1d" (or a bare number of milliseconds); undefined if malformed. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 'ms'] ?? 1;
  const ms = Math.round(Number(match[1]) * unitMs);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** The shortest text parseDurationMs reads back as `ms`: "2h", "90s", "1500ms". */
export function durationText(ms: number): string {
  for (const [unit, unitMs] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= unitMs && ms % unitMs === 0) return `${ms / unitMs}${unit}`;
  }
  return `${ms}ms`;
}
