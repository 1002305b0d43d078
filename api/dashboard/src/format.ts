// Display helpers. Amounts arrive as exact Decimal strings; they are only shortened for the
// eye here (the exact string stays in the title attribute where it matters).
export function money(value: string | null | undefined, digits = 2): string {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return value;
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function amount(value: string | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return value;
  return n.toLocaleString("en-US", { maximumSignificantDigits: 8 });
}

export function pct(value: string | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return `${(Number(value) * 100).toFixed(2)} %`;
}

export function when(value: string | null | undefined): string {
  if (!value) return "—";
  return new Date(value).toISOString().replace("T", " ").slice(0, 19);
}

export function signClass(value: string | null | undefined): string {
  const n = Number(value ?? 0);
  return n > 0 ? "pos" : n < 0 ? "neg" : "";
}

/** Seconds since the epoch, what lightweight-charts takes as a time. */
export function chartTime(iso: string): number {
  return Math.floor(new Date(iso).getTime() / 1000);
}

export function toCsv(rows: (string | number | null | undefined)[][]): string {
  const cell = (v: string | number | null | undefined) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return rows.map((r) => r.map(cell).join(",")).join("\n") + "\n";
}

export function download(name: string, text: string, type = "text/csv"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

const TIMEFRAMES: [string, number][] = [["1s", 1], ["5s", 5], ["15s", 15], ["1m", 60], ["5m", 300],
  ["15m", 900], ["1h", 3600], ["4h", 14400], ["1d", 86400]];
const RESOLUTIONS: [string, number][] = [["MINUTE", 60], ["FIVE_MINUTES", 300], ["FIFTEEN_MINUTES", 900],
  ["HOUR", 3600], ["FOUR_HOURS", 14400], ["DAY", 86400]];

function step(steps: [string, number][], spanSeconds: number, maxPoints: number): string {
  return (steps.find(([, s]) => spanSeconds / s <= maxPoints) ?? steps[steps.length - 1])[0];
}

/** The finest candle timeframe that draws ``spanSeconds`` in at most ``maxPoints`` candles. */
export const timeframeFor = (spanSeconds: number, maxPoints = 600) => step(TIMEFRAMES, spanSeconds, maxPoints);
/** The finest equityCurve resolution within ``maxPoints`` points. */
export const resolutionFor = (spanSeconds: number, maxPoints = 1000) => step(RESOLUTIONS, spanSeconds, maxPoints);
