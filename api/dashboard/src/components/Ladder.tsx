// The ladder a configuration would place at a price (the public dcaPlan query), as a table
// and as a chart of each level's price and the average entry after it fills.
import { amount, money } from "../format";
import { Chart } from "./Chart";

export function Ladder({ levels }: { levels: any[] }) {
  if (!levels.length) return null;
  // One point per level on an invented time axis: lightweight-charts needs times.
  const points = (key: string) => levels.map((l, i) => ({ time: 86400 * (i + 1), value: Number(l[key]) }));
  return (
    <section aria-labelledby="ladder-title" data-testid="ladder">
      <h2 id="ladder-title">Ladder preview</h2>
      <div className="scroll">
        <table data-testid="ladder-table">
          <caption>Base order (0) and safety orders at the current price</caption>
          <thead><tr><th scope="col">#</th><th scope="col">Deviation</th><th scope="col">Price</th>
            <th scope="col">Quote</th><th scope="col">Units</th><th scope="col">Total quote</th>
            <th scope="col">Average entry</th><th scope="col">Take profit</th><th scope="col">Stop loss</th></tr></thead>
          <tbody>
            {levels.map((l) => (
              <tr key={l.n}>
                <td>{l.n}</td><td>{Number(l.deviationPct).toFixed(2)} %</td><td title={l.price}>{money(l.price)}</td>
                <td>{money(l.quote)}</td><td>{amount(l.units)}</td><td>{money(l.totalQuote)}</td>
                <td>{money(l.averagePrice)}</td><td>{money(l.takeProfitPrice)}</td><td>{money(l.stopLossPrice)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Chart timeLabel={(t) => (t === 86400 ? "base" : `SO ${t / 86400 - 1}`)} label="Ladder: order price and average entry per level" testId="ladder-chart" height={220}
        lines={[{ name: "order price", color: "#1565c0", points: points("price") },
                { name: "average entry", color: "#8e24aa", points: points("averagePrice") },
                { name: "take profit", color: "#2e7d32", points: points("takeProfitPrice") }]} />
    </section>
  );
}
