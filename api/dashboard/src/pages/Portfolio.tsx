// The portfolio: P/L figures, balances and the equity curve.
import { Banner } from "../components/Banner";
import { EquityChart } from "../components/Equity";
import { money, pct, signClass } from "../format";
import { PORTFOLIO_UPDATES, useLiveRefetch, useQuery } from "../hooks";
import { PORTFOLIO_FIELDS } from "../queries";
import { useSession } from "../session";

export function PortfolioFigures({ p }: { p: any }) {
  const rows: [string, string, string?][] = [
    ["Realized P/L", money(p.realizedPnl), signClass(p.realizedPnl)],
    ["Unrealized P/L", money(p.unrealizedPnl), signClass(p.unrealizedPnl)],
    ["Fees", money(p.fees)], ["Deals closed", String(p.dealsClosed)], ["Deals open", String(p.dealsOpen)],
    ["Wins / losses", `${p.wins} / ${p.losses}`], ["Win rate", pct(p.winRate)], ["ROI", pct(p.roi)],
    ["Max drawdown", money(p.maxDrawdown)], ["Capital committed", money(p.capitalCommitted)],
  ];
  return (
    <>
      <dl className="figures" data-testid="portfolio-figures">
        {rows.map(([k, v, c]) => <div key={k}><dt>{k}</dt><dd className={c} data-testid={`fig-${k}`}>{v}</dd></div>)}
      </dl>
      <table>
        <caption>Balances</caption>
        <thead><tr><th scope="col">Asset</th><th scope="col">Free</th><th scope="col">Locked</th><th scope="col">Total</th></tr></thead>
        <tbody>{p.balances.map((b: any) => (
          <tr key={`${b.accountId}-${b.asset}`}><td>{b.asset}</td><td>{money(b.free)}</td><td>{money(b.locked)}</td>
            <td title={b.total}>{money(b.total)}</td></tr>))}</tbody>
      </table>
    </>
  );
}

export function PortfolioPage() {
  const session = useSession();
  const q = useQuery(`{ portfolio { ${PORTFOLIO_FIELDS} } }`);
  useLiveRefetch(q.refetch, PORTFOLIO_UPDATES, {}, 3000);
  return (
    <>
      <Banner modes={session.accounts.map((a) => a.mode)} />
      <h1>Portfolio</h1>
      {q.error && <p className="error" role="alert">{q.error}</p>}
      {q.data && <PortfolioFigures p={q.data.portfolio} />}
      <h2>Equity curve</h2>
      <EquityChart since={session.me.registeredAt} />
    </>
  );
}
