// Backtests on the server: pick a stored series (or fetch one from an exchange) and a
// period, a configuration, run it,
// watch its progress over the websocket, then see its chart and summary; compare runs.
import { useEffect, useState, type FormEvent } from "react";
import { ConfigFields } from "../components/ConfigFields";
import { describeErrors, Field, Status } from "../components/Form";
import { CONFIG_DEFAULTS, configInput } from "../config";
import { gql, subscribe } from "../gql";
import { useQuery } from "../hooks";
import { BacktestResult, RUN_FIELDS } from "./backtest/Result";
import { BacktestRuns } from "./backtest/Compare";
import { FetchSeries } from "./backtest/Fetch";

const RUN = `mutation($input: RunBacktestInput!) { runBacktest(input: $input) {
  ... on BacktestRun { id status } ... on BacktestErrors { code message errors { field message } } } }`;
const PROGRESS = `subscription($id: ID!) { backtestProgress(runId: $id) { status candlesDone candlesTotal fraction errorCode } }`;
const DETAIL = `query($id: ID!) { backtestRun(id: $id) { ${RUN_FIELDS} } }`;
const BY_PAIR = "@pair"; // the series the server stores for the configuration's pair

function utcInput(value: string): string | null {
  return value ? new Date(`${value}Z`).toISOString() : null; // the inputs are UTC
}

// Progress arrives over the websocket; the run itself is read until it is no longer running
// (the read model may record the end a moment after the last progress message).
function useRun(runId: string | null, onDone: () => void) {
  const [progress, setProgress] = useState<any>(null);
  const [run, setRun] = useState<any>(null);
  useEffect(() => {
    if (!runId) return;
    setRun(null);
    setProgress(null);
    let stopped = false;
    let timer: number | undefined;
    const read = () => gql(DETAIL, { id: runId }).then((d) => {
      if (stopped) return;
      setRun(d.backtestRun);
      if (d.backtestRun?.status === "running") timer = window.setTimeout(read, 1000);
      else onDone();
    });
    const unsubscribe = subscribe(PROGRESS, { id: runId }, (d: any) => setProgress(d.backtestProgress));
    read();
    return () => { stopped = true; window.clearTimeout(timer); unsubscribe(); };
  }, [runId]);
  return { progress, run };
}

export function BacktestPage() {
  const files = useQuery(`{ candleFiles }`);
  const [values, setValues] = useState<Record<string, string>>({ ...CONFIG_DEFAULTS, file: "", from: "", to: "", feeRate: "0.001", balance: "" });
  const [runId, setRunId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [listKey, setListKey] = useState(0);
  const { progress, run } = useRun(runId, () => setListKey((k) => k + 1));
  const set = (name: string, value: string) => setValues((v) => ({ ...v, [name]: value }));
  const fetched = (file: string) => { files.refetch(); set("file", file); };
  const names: string[] = files.data?.candleFiles ?? [];
  useEffect(() => { if (names.length && !values.file) set("file", names[0]); }, [names.length]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const input = { config: configInput(values), feeRate: values.feeRate, balance: values.balance || null,
      candles: { ...(values.file === BY_PAIR ? { pair: values.pair } : { file: values.file }),
        from: utcInput(values.from), to: utcInput(values.to) } };
    gql(RUN, { input }).then((d) => {
      const refused = describeErrors(d.runBacktest);
      if (refused) setError(refused); else { setRunId(d.runBacktest.id); setListKey((k) => k + 1); }
    }).catch((err: Error) => setError(err.message));
  };
  const fraction = Number(progress?.fraction ?? (run?.status === "completed" ? 1 : 0));
  return (
    <>
      <h1>Backtest</h1>
      <div className="two">
        <form onSubmit={submit} aria-label="backtest" className="bot-form">
          <div className="field">
            <label htmlFor="f-file">Candle series</label>
            <select id="f-file" value={values.file} onChange={(e) => set("file", e.target.value)}>
              <option value={BY_PAIR}>The stored series of the pair below</option>
              {names.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          </div>
          <Field label="From (UTC, optional)" name="from" type="datetime-local" value={values.from} onChange={(e) => set("from", e.target.value)} />
          <Field label="To (UTC, optional)" name="to" type="datetime-local" value={values.to} onChange={(e) => set("to", e.target.value)} />
          <ConfigFields values={values} onChange={set} />
          <Field label="Fee rate" name="feeRate" value={values.feeRate} onChange={(e) => set("feeRate", e.target.value)} inputMode="decimal" />
          <Field label="Balance (quote, optional)" name="balance" value={values.balance} onChange={(e) => set("balance", e.target.value)}
                 inputMode="decimal" hint="empty: unlimited, the capital needed is measured" />
          <Status error={error} />
          <button type="submit">Run backtest</button>
        </form>
        <div>
          <FetchSeries pair={values.pair} onFetched={fetched} />
          {runId && (
            <div className="field">
              <label htmlFor="bt-progress">Progress: {progress?.status ?? run?.status ?? "starting"}
                {progress ? ` (${progress.candlesDone} of ${progress.candlesTotal} candles)` : ""}</label>
              <progress id="bt-progress" className="progress" max={1} value={fraction} data-testid="backtest-progress" />
            </div>
          )}
          {run?.errorCode && <p className="error" role="alert">The run failed: {run.errorCode}</p>}
          {run?.status === "completed" && <BacktestResult run={run} />}
        </div>
      </div>
      <h2>Compare runs</h2>
      <BacktestRuns refreshKey={listKey} onOpen={setRunId} />
    </>
  );
}
