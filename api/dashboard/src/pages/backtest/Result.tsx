// One finished backtest: its summary (the keys of `backtest --json`), the series' candles with
// every entry and exit marked, and its exact equity curve.
import { Chart, type Marker } from "../../components/Chart";
import { chartTime, money, timeframeFor } from "../../format";
import { useQuery } from "../../hooks";

export const RUN_FIELDS = `id status requestedAt finishedAt candlesFile pair errorCode summary
  deals { openedAt closedAt closeReason safetyOrdersUsed entryPrice exitPrice realizedPnl }
  equityCurve { time equity }`;
const CANDLES = `query($pair: String!, $from: DateTime!, $to: DateTime!, $tf: String!, $file: String!) {
  candles(pair: $pair, from: $from, to: $to, timeframe: $tf, file: $file) { time open high low close } }`;
export const SUMMARY_KEYS = ["candles", "deals_closed", "deals_open", "take_profits", "stop_losses",
  "realized_pnl", "unrealized_pnl", "total_pnl", "win_rate", "profit_factor", "roi", "max_drawdown",
  "max_capital_committed", "max_safety_orders_used", "market_change", "avg_deal_seconds"];

export function summaryValue(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string" && /^-?[\d.]+(E[+-]?\d+)?$/i.test(value)) return money(value, 4);
  return String(value);
}

function dealMarkers(deals: any[]): Marker[] {
  return deals.flatMap((d): Marker[] => [
    { time: chartTime(d.openedAt), kind: "entry", text: "entry" },
    ...(d.closedAt ? [{ time: chartTime(d.closedAt), kind: "exit" as const, text: d.closeReason ?? "exit" }] : []),
  ]);
}

export function BacktestResult({ run }: { run: any }) {
  const s = run.summary ?? {};
  // A run over a whole series has no period in its summary: its equity curve spans it.
  const first = run.equityCurve[0]?.time;
  const last = run.equityCurve[run.equityCurve.length - 1]?.time;
  const fromMs: number | null = s.from_ms ?? (first ? Date.parse(first) : null);
  const toMs: number | null = s.to_ms ?? (last ? Date.parse(last) + 60_000 : null);
  const known = fromMs !== null && toMs !== null;
  const from = known ? new Date(fromMs).toISOString() : "";
  const to = known ? new Date(toMs).toISOString() : "";
  const tf = known ? timeframeFor((toMs - fromMs) / 1000, 1000) : "1m";
  const candles = useQuery(CANDLES, { pair: run.pair, from, to, tf, file: run.candlesFile }, !known);
  const bars = (candles.data?.candles ?? []).map((c: any) => ({ time: chartTime(c.time), open: Number(c.open),
    high: Number(c.high), low: Number(c.low), close: Number(c.close) }));
  const equity = run.equityCurve.map((p: any) => ({ time: chartTime(p.time), value: Number(p.equity) }));
  return (
    <section aria-labelledby="result-title" data-testid="backtest-result">
      <h2 id="result-title">Result: {run.pair} on {run.candlesFile}</h2>
      <dl className="figures" data-testid="backtest-summary">
        {SUMMARY_KEYS.map((k) => <div key={k}><dt>{k.replace(/_/g, " ")}</dt><dd>{summaryValue(s[k])}</dd></div>)}
      </dl>
      {candles.error && <p className="error" role="alert">{candles.error}</p>}
      <Chart label={`${run.pair} candles (${tf}) with the backtest's entries and exits`} testId="backtest-chart"
             candles={bars} markers={dealMarkers(run.deals)} />
      <Chart label="Backtest equity: realized plus the open deal" testId="backtest-equity" height={220}
             lines={[{ name: "equity", color: "#1565c0", points: equity, area: true }]} />
    </section>
  );
}
