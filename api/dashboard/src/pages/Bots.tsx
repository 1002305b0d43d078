// Every bot: status, pair, P/L, deals, safety orders used, with start/pause/stop.
import { Banner, modeOf } from "../components/Banner";
import { BotActions } from "../components/BotActions";
import { money, signClass } from "../format";
import { DEAL_EVENTS, useLiveRefetch, useQuery } from "../hooks";
import { BOTS } from "../queries";
import { useSession } from "../session";

export function BotsPage() {
  const session = useSession();
  const q = useQuery(BOTS);
  useLiveRefetch(q.refetch, DEAL_EVENTS);
  const bots: any[] = q.data?.bots.edges.map((e: any) => e.node) ?? [];
  const account = (id: string) => session.accounts.find((a) => a.id === id);
  return (
    <>
      <Banner modes={bots.length ? bots.map((b) => account(b.exchangeAccountId)?.mode ?? modeOf(b.mode))
        : session.accounts.map((a) => a.mode)} />
      <h1>Bots</h1>
      <p><a className="button" href="#/bots/new">New bot</a></p>
      {q.error && <p className="error" role="alert">{q.error}</p>}
      <div className="scroll">
        <table data-testid="bots-table">
          <caption>Your bots</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Mode</th>
            <th scope="col">Pair</th><th scope="col">Realized P/L</th><th scope="col">Unrealized</th>
            <th scope="col">Deals</th><th scope="col">Safety orders used</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            {bots.map((b) => (
              <tr key={b.id} data-bot={b.name}>
                <td><a href={`#/bots/${b.id}`}>{b.name}</a></td>
                <td><span className={`status status-${b.status.toLowerCase()}`} data-testid="bot-status">{b.status}</span></td>
                <td>{account(b.exchangeAccountId)?.mode ?? b.mode}</td>
                <td>{b.pair}</td>
                <td className={signClass(b.pnl?.realizedPnl)}>{money(b.pnl?.realizedPnl)}</td>
                <td className={signClass(b.pnl?.unrealizedPnl)}>{money(b.pnl?.unrealizedPnl)}</td>
                <td>{b.dealsClosed} closed / {b.dealsOpened} opened</td>
                <td>{b.openDeal ? b.openDeal.safetyOrdersUsed : "—"}</td>
                <td><BotActions bot={b} onDone={q.refetch} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
