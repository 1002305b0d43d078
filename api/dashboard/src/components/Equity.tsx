// The equity curve: cumulative realized P/L at each closed deal.
import { chartTime } from "../format";
import { useQuery } from "../hooks";
import { Chart } from "./Chart";

const CLOSED = `query($bot: ID) { deals(botId: $bot, status: CLOSED, first: 100) { edges { node { closedAt realizedPnl } } } }`;

export function EquityChart({ botId }: { botId?: string }) {
  const q = useQuery(CLOSED, { bot: botId ?? null });
  const deals = (q.data?.deals?.edges ?? []).map((e: any) => e.node).reverse();
  let total = 0;
  const points = deals.map((d: any) => ({ time: chartTime(d.closedAt), value: (total += Number(d.realizedPnl)) }));
  if (q.error) return <p className="error" role="alert">{q.error}</p>;
  if (!points.length) return <p>No closed deal yet: the curve starts with the first.</p>;
  return <Chart label="Equity curve: cumulative P/L" testId="equity-chart"
                lines={[{ name: "P/L", color: "#2e7d32", points, area: true }]} />;
}
