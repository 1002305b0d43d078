// The equity curve (realized + unrealized P/L) of the portfolio or one bot, from the API's
// equityCurve, refreshed while deals move it.
import { useState } from "react";
import { chartTime, resolutionFor } from "../format";
import { PORTFOLIO_UPDATES, useLiveRefetch, useQuery } from "../hooks";
import { Chart } from "./Chart";

const CURVE = `query($from: DateTime!, $bot: ID, $res: Resolution!) {
  equityCurve(from: $from, botId: $bot, resolution: $res) { time realizedPnl unrealizedPnl equity } }`;

export function EquityChart({ since, botId }: { since: string; botId?: string }) {
  const [res] = useState(() => resolutionFor((Date.now() - new Date(since).getTime()) / 1000));
  const q = useQuery(CURVE, { from: since, bot: botId ?? null, res });
  useLiveRefetch(q.refetch, PORTFOLIO_UPDATES, {}, 5000);
  const points = q.data?.equityCurve ?? [];
  if (q.error) return <p className="error" role="alert">{q.error}</p>;
  if (!points.length) return <p>Nothing to draw yet: the curve starts with the first fill.</p>;
  const line = (key: string) => points.map((p: any) => ({ time: chartTime(p.time), value: Number(p[key]) }));
  return <Chart label="Equity curve: realized plus unrealized P/L over time" testId="equity-chart"
                lines={[{ name: "equity", color: "#1565c0", points: line("equity"), area: true },
                        { name: "realized", color: "#2e7d32", points: line("realizedPnl") }]} />;
}
