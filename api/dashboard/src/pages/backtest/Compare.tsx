// Your stored backtests; tick several to see their figures side by side and their equity
// curves on one chart (compareBacktests).
import { useState } from "react";
import { Chart } from "../../components/Chart";
import { chartTime, when } from "../../format";
import { useQuery } from "../../hooks";
import { SUMMARY_KEYS, summaryValue } from "./Result";

const RUNS = `{ backtestRuns(first: 50) { edges { node { id status requestedAt candlesFile pair errorCode
  summary config { takeProfitPct priceDeviationPct maxSafetyOrders } } } } }`;
const COMPARE = `query($ids: [ID!]!) { compareBacktests(ids: $ids) { id pair summary equityCurve { time equity } } }`;
const COLORS = ["#1565c0", "#c62828", "#2e7d32", "#8e24aa", "#ef6c00", "#00838f", "#5d4037", "#455a64", "#ad1457", "#283593"];

function Comparison({ ids }: { ids: string[] }) {
  const q = useQuery(COMPARE, { ids }, ids.length < 2);
  const runs = (q.data?.compareBacktests ?? []).filter(Boolean);
  if (ids.length < 2) return <p>Tick two or more runs to compare them.</p>;
  return (
    <section aria-label="comparison" data-testid="comparison">
      <div className="scroll">
        <table>
          <caption>Side by side</caption>
          <thead><tr><th scope="col">Figure</th>{runs.map((r: any, i: number) => <th scope="col" key={r.id}>Run {i + 1}</th>)}</tr></thead>
          <tbody>{SUMMARY_KEYS.map((k) => (
            <tr key={k}><th scope="row">{k.replace(/_/g, " ")}</th>{runs.map((r: any) => <td key={r.id}>{summaryValue(r.summary?.[k])}</td>)}</tr>))}
          </tbody>
        </table>
      </div>
      <Chart label="Equity curves of the compared runs" height={240}
             lines={runs.map((r: any, i: number) => ({ name: `run ${i + 1}`, color: COLORS[i % COLORS.length],
               points: r.equityCurve.map((p: any) => ({ time: chartTime(p.time), value: Number(p.equity) })) }))} />
    </section>
  );
}

export function BacktestRuns({ refreshKey, onOpen }: { refreshKey: number; onOpen: (id: string) => void }) {
  const q = useQuery(RUNS, { refreshKey });
  const [picked, setPicked] = useState<string[]>([]);
  const runs = (q.data?.backtestRuns.edges ?? []).map((e: any) => e.node);
  const toggle = (id: string) => setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id].slice(-10)));
  return (
    <>
      <div className="scroll">
        <table data-testid="backtest-runs">
          <caption>Your backtests, newest first</caption>
          <thead><tr><th scope="col">Compare</th><th scope="col">Asked</th><th scope="col">Series</th><th scope="col">Status</th>
            <th scope="col">Take profit %</th><th scope="col">Total P/L</th><th scope="col">Deals</th><th scope="col"></th></tr></thead>
          <tbody>{runs.map((r: any) => (
            <tr key={r.id}>
              <td><input type="checkbox" aria-label={`compare run of ${when(r.requestedAt)}`} checked={picked.includes(r.id)}
                         disabled={r.status !== "completed"} onChange={() => toggle(r.id)} /></td>
              <td>{when(r.requestedAt)}</td><td>{r.candlesFile}</td><td>{r.status}{r.errorCode ? ` (${r.errorCode})` : ""}</td>
              <td>{r.config?.takeProfitPct ?? "—"}</td><td>{summaryValue(r.summary?.total_pnl)}</td>
              <td>{r.summary?.deals_closed ?? "—"}</td>
              <td><button type="button" onClick={() => onOpen(r.id)}>Show</button></td>
            </tr>))}
          </tbody>
        </table>
      </div>
      <Comparison ids={picked} />
    </>
  );
}
