// The first page: cards (bots, running bots, total P/L, balances), health lights, the latest
// closed deals — kept current over the websocket.
import { Banner } from "../components/Banner";
import { HealthLights } from "../components/Health";
import { useLivePrice } from "../components/LiveChart";
import { money, signClass, when } from "../format";
import { DEAL_EVENTS, useLiveRefetch, useQuery } from "../hooks";
import { BOT_FIELDS, DEAL_ROW, PORTFOLIO_FIELDS } from "../queries";
import { useSession } from "../session";

const OVERVIEW = `{ portfolio { ${PORTFOLIO_FIELDS} }
  bots(first: 100) { edges { node { ${BOT_FIELDS} } } }
  deals(status: CLOSED, first: 10) { edges { node { ${DEAL_ROW} bot { name } } } } }`;

function Card({ title, value, className = "", testId }: { title: string; value: string; className?: string; testId?: string }) {
  return (
    <section className="card" aria-label={title}>
      <h2>{title}</h2>
      <p className={`big ${className}`} data-testid={testId}>{value}</p>
    </section>
  );
}

export function ClosedDeals({ deals: given }: { deals: any[] }) {
  if (!given.length) return <p>No closed deal yet.</p>;
  // The API lists deals newest opened first; a closed deals table reads by closing time.
  const deals = [...given].sort((a, b) => (a.closedAt < b.closedAt ? 1 : a.closedAt > b.closedAt ? -1 : 0));
  return (
    <div className="scroll">
    <table data-testid="closed-deals">
      <caption>Latest closed deals</caption>
      <thead><tr><th scope="col">Closed</th><th scope="col">Bot</th><th scope="col">Pair</th>
        <th scope="col">Reason</th><th scope="col">Safety orders</th><th scope="col">P/L</th></tr></thead>
      <tbody>
        {deals.map((d) => (
          <tr key={d.id}>
            <td>{when(d.closedAt)}</td><td><a href={`#/bots/${d.botId}`}>{d.bot?.name ?? d.botId}</a></td>
            <td>{d.pair}</td><td>{d.closeReason ?? "—"}</td><td>{d.safetyOrdersUsed}</td>
            <td className={signClass(d.realizedPnl)} title={d.realizedPnl}>{money(d.realizedPnl)}</td>
          </tr>
        ))}
      </tbody>
    </table>
    </div>
  );
}

function PriceCard({ pair }: { pair: string }) {
  const price = useLivePrice(pair); // the prices subscription: every closed candle
  return <Card title={`${pair} now`} value={money(price)} testId="card-price" />;
}

export function Overview() {
  const session = useSession();
  const q = useQuery(OVERVIEW);
  useLiveRefetch(q.refetch, DEAL_EVENTS);
  const p = q.data?.portfolio;
  const bots = q.data?.bots.edges.map((e: any) => e.node) ?? [];
  const total = p ? String(Number(p.realizedPnl) + Number(p.unrealizedPnl)) : null;
  const balances = (p?.balances ?? []).map((b: any) => `${money(b.total)} ${b.asset}`).join(" · ");
  return (
    <>
      <Banner modes={session.accounts.map((a) => a.mode)} />
      <h1>Overview</h1>
      {q.error && <p className="error" role="alert">{q.error}</p>}
      <div className="cards">
        <Card title="Bots" value={String(bots.length)} testId="card-bots" />
        <Card title="Running bots" value={String(bots.filter((b: any) => b.status === "RUNNING").length)} testId="card-running" />
        <Card title="Total P/L" value={money(total)} className={signClass(total)} testId="card-pnl" />
        <Card title="Balances" value={balances || "—"} testId="card-balances" />
        {[...new Set<string>(bots.map((b: any) => b.pair))].slice(0, 4).map((pair) => <PriceCard key={pair} pair={pair} />)}
      </div>
      <h2>Health</h2>
      <HealthLights />
      <h2>Closed deals</h2>
      <ClosedDeals deals={q.data?.deals?.edges.map((e: any) => e.node) ?? []} />
    </>
  );
}
