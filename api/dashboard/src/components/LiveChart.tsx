// A bot's price chart on the server's market candles (candles), kept current by the prices
// subscription, with the pair's live price above it.
import { useEffect, useState } from "react";
import { chartTime, money, timeframeFor } from "../format";
import { subscribe } from "../gql";
import { useLiveRefetch, useQuery } from "../hooks";
import { PriceChart } from "./PriceChart";

const CANDLES = `query($pair: String!, $from: DateTime!, $tf: String!) {
  candles(pair: $pair, from: $from, timeframe: $tf) { time open high low close } }`;
const PRICES = "subscription($pairs: [String!]!) { prices(pairs: $pairs) { pair price at } }";

export function useLivePrice(pair: string): string | null {
  const [price, setPrice] = useState<string | null>(null);
  useEffect(() => subscribe(PRICES, { pairs: [pair] }, (d: any) => setPrice(d.prices.price)), [pair]);
  return price;
}

export function LiveChart({ pair, since, deals, openDeal }: { pair: string; since: string; deals: any[]; openDeal: any }) {
  const [tf] = useState(() => timeframeFor((Date.now() - new Date(since).getTime()) / 1000));
  const q = useQuery(CANDLES, { pair, from: since, tf });
  useLiveRefetch(q.refetch, PRICES, { pairs: [pair] }, 5000);
  const price = useLivePrice(pair);
  const candles = (q.data?.candles ?? []).map((c: any) => ({ time: chartTime(c.time), open: Number(c.open),
    high: Number(c.high), low: Number(c.low), close: Number(c.close) }));
  return (
    <>
      <p aria-live="polite">{pair} now: <strong data-testid="live-price">{money(price)}</strong>
        {" "}<small>({tf} candles)</small></p>
      {q.error && <p className="error" role="alert">{q.error}</p>}
      <PriceChart pair={pair} candles={candles} deals={deals} openDeal={openDeal} />
    </>
  );
}
