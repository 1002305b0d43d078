// A pair's price with a bot's fills marked on it: every entry, safety fill and exit, and the
// open deal's levels (average entry, take profit, stop loss) as lines.
import { chartTime } from "../format";
import { Chart, type Candle, type Marker, type PriceLine } from "./Chart";

export function fillMarkers(deals: any[]): Marker[] {
  return deals.flatMap((d) => (d.fills ?? []).map((f: any): Marker => {
    const kind = f.side.toLowerCase() === "sell" ? "exit" : f.safetyOrder ? "safety" : "entry";
    const text = kind === "exit" ? `exit ${Number(f.price).toFixed(2)}`
      : kind === "safety" ? `SO${f.safetyOrder}` : "entry";
    return { time: chartTime(f.at), kind, text };
  }));
}

export function dealLevels(deal: any | null): PriceLine[] {
  if (!deal) return [];
  const lines: [string, string, string][] = [
    ["averageEntry", "#8e24aa", "avg entry"], ["takeProfitPrice", "#2e7d32", "take profit"],
    ["stopLossPrice", "#c62828", "stop loss"]];
  return lines.filter(([k]) => deal[k]).map(([k, color, title]) => ({ price: Number(deal[k]), color, title }));
}

export function PriceChart({ pair, candles, deals, openDeal }: { pair: string; candles: Candle[]; deals: any[]; openDeal: any | null }) {
  const markers = fillMarkers(deals);
  // With no candles to draw, the fills' own prices make the line the markers sit on.
  const fills = deals.flatMap((d) => d.fills ?? []).map((f: any) => ({ time: chartTime(f.at), value: Number(f.price) }));
  return (
    <Chart label={`${pair} price with entries, safety fills and exits`} testId="price-chart"
      candles={candles} lines={candles.length ? [] : [{ name: "fill price", color: "#1565c0", points: fills }]}
      markers={markers} priceLines={dealLevels(openDeal)} />
  );
}
