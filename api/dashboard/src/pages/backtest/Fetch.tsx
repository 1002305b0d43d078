// "Or fetch one": download an exchange's candles into a stored series on the server
// (fetchCandles), watch its progress (candleFetchProgress), then pick it for a backtest.
import { useEffect, useState, type FormEvent } from "react";
import { describeErrors, Field, Status } from "../../components/Form";
import { JobProgress } from "../../components/JobProgress";
import { gql } from "../../gql";
import { useJobProgress } from "../../hooks";

const FETCH = `mutation($input: FetchCandlesInput!) { fetchCandles(input: $input) {
  ... on CandleFetch { id file status } ... on CandleFetchErrors { code message errors { field message } } } }`;
const PROGRESS = `subscription($id: ID!) { candleFetchProgress(fetchId: $id) {
  status file candlesDone candlesTotal fraction candlesWritten gaps errorCode errorMessage } }`;

function utcInput(value: string): string | null {
  return value ? new Date(`${value}Z`).toISOString() : null; // the inputs are UTC
}

export function FetchSeries({ pair, onFetched }: { pair: string; onFetched: (file: string) => void }) {
  const [values, setValues] = useState({ exchange: "binance", pair, timeframe: "1m", from: "", to: "" });
  const [sandbox, setSandbox] = useState(false);
  const [fetchId, setFetchId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const progress = useJobProgress<any>(PROGRESS, "candleFetchProgress", fetchId);
  const set = (name: string, value: string) => setValues((v) => ({ ...v, [name]: value }));
  useEffect(() => { if (progress?.status === "completed") onFetched(progress.file); }, [progress?.status]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const input = { exchange: values.exchange, pair: values.pair, timeframe: values.timeframe, sandbox,
      from: utcInput(values.from), to: utcInput(values.to) };
    if (!input.from) { setError("First candle: give its time"); return; }
    gql(FETCH, { input }).then((d) => {
      const refused = describeErrors(d.fetchCandles);
      if (refused) setError(refused); else setFetchId(d.fetchCandles.id);
    }).catch((err: Error) => setError(err.message));
  };
  return (
    <form onSubmit={submit} aria-label="fetch a series" className="bot-form" data-testid="fetch-form">
      <h2>Or fetch a series</h2>
      <Field label="Exchange (ccxt id)" name="fetchExchange" value={values.exchange} onChange={(e) => set("exchange", e.target.value)} hint="e.g. binance" />
      <Field label="Pair to fetch" name="fetchPair" value={values.pair} onChange={(e) => set("pair", e.target.value)} />
      <Field label="Timeframe" name="fetchTimeframe" value={values.timeframe} onChange={(e) => set("timeframe", e.target.value)} />
      <Field label="First candle (UTC)" name="fetchFrom" type="datetime-local" value={values.from} onChange={(e) => set("from", e.target.value)} />
      <Field label="Last candle before (UTC, optional)" name="fetchTo" type="datetime-local" value={values.to} onChange={(e) => set("to", e.target.value)}
             hint="empty: up to the last closed candle" />
      <div className="field check">
        <input id="f-fetchSandbox" type="checkbox" checked={sandbox} onChange={(e) => setSandbox(e.target.checked)} />
        <label htmlFor="f-fetchSandbox">Sandbox (testnet)</label>
      </div>
      <Status error={error ?? (progress?.status === "failed" ? `${progress.errorCode}: ${progress.errorMessage}` : null)}>
        {progress?.status === "completed" ? `${progress.file}: ${progress.candlesWritten} candles added, ${progress.gaps} gap(s)` : null}
      </Status>
      {fetchId && <JobProgress id="fetch" what="Fetch" state={progress?.status} unit="candles" done={progress?.candlesDone}
                               total={progress?.candlesTotal} fraction={progress?.fraction} />}
      <button type="submit">Fetch candles</button>
    </form>
  );
}
