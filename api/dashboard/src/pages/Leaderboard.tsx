// Listed bots ranked by ROI.
import { money, pct, signClass } from "../format";
import { useQuery } from "../hooks";

export const LEADERBOARD = `rank botId name pair roi winRate dealsClosed realizedPnl maxDrawdown`;

export function LeaderboardTable({ entries }: { entries: any[] }) {
  if (!entries.length) return <p>No listed bot yet.</p>;
  return (
    <div className="scroll">
      <table data-testid="leaderboard">
        <caption>Leaderboard, by ROI</caption>
        <thead><tr><th scope="col">Rank</th><th scope="col">Bot</th><th scope="col">Pair</th><th scope="col">ROI</th>
          <th scope="col">Win rate</th><th scope="col">Deals</th><th scope="col">Realized P/L</th><th scope="col">Max drawdown</th></tr></thead>
        <tbody>{entries.map((e) => (
          <tr key={e.botId}><td>{e.rank}</td><td>{e.name ?? "—"}</td><td>{e.pair ?? "—"}</td><td>{pct(e.roi)}</td>
            <td>{pct(e.winRate)}</td><td>{e.dealsClosed}</td><td className={signClass(e.realizedPnl)}>{money(e.realizedPnl)}</td>
            <td>{money(e.maxDrawdown)}</td></tr>))}</tbody>
      </table>
    </div>
  );
}

export function LeaderboardPage() {
  const q = useQuery(`{ leaderboard(first: 50) { ${LEADERBOARD} } }`);
  return (
    <>
      <h1>Leaderboard</h1>
      {q.error && <p className="error" role="alert">{q.error}</p>}
      <LeaderboardTable entries={q.data?.leaderboard ?? []} />
    </>
  );
}
