// The health view, as /health says (polled): the overall light and why it is not green, the
// lights of the event store, projections, engine loop and market feed, each background task
// (its light, last success, rounds, and while failing its code and since when) and this
// process (role, pid, niceness).
import { useContext, useEffect, useState } from "react";
import { accessToken, gql } from "../gql";
import { SessionContext } from "../session";
import { ago, errorLabel, healthView, when, type HealthView, type Light, type ProcessInfo, type Task } from "../health";

const POLL_MS = 5000;

/** /health every few seconds, and how far the server's clock is ahead of the browser's (the
 *  answer's Date header): times are said relative to the server's clock. An administrator's
 *  request carries their token: /health then lists the accounts (anyone else gets counts).
 *  Answered without them (X-Health-View: public) the token has expired: a GraphQL call
 *  refreshes it for the next poll. */
function useHealth(admin: boolean): [unknown, number] {
  const [answer, setAnswer] = useState<unknown>(undefined); // undefined: not answered yet
  const [skew, setSkew] = useState(0);
  useEffect(() => {
    let stop = false;
    const poll = () => {
      const token = admin ? accessToken() : null;
      return fetch("/health", { cache: "no-store", headers: token ? { Authorization: `Bearer ${token}` } : {} })
        .then(async (r) => {
          const date = Date.parse(r.headers.get("date") ?? "");
          const body = await r.json();
          if (stop) return;
          setSkew(Number.isNaN(date) ? 0 : date - Date.now());
          setAnswer(body);
          if (token && r.headers.get("x-health-view") === "public") gql(`{ me { role } }`).catch(() => undefined);
        })
        .catch(() => !stop && setAnswer(null));
    };
    poll();
    const timer = window.setInterval(poll, POLL_MS);
    return () => { stop = true; window.clearInterval(timer); };
  }, [admin]);
  return [answer, skew];
}

function Dot({ light }: { light: Light }) {
  return <span className={`light light-${light}`} aria-hidden="true" />;
}

function Overall({ view }: { view: HealthView }) {
  return (
    <div className={`overall overall-${view.overall}`} data-testid="health-overall" role="status">
      <p><Dot light={view.overall} />Overall: <strong>{view.overall}</strong></p>
      {view.reasons.length > 0 && (
        <ul aria-label="why">{view.reasons.map((r, i) => <li key={i}>{r}</li>)}</ul>
      )}
    </div>
  );
}

function Since({ iso, now }: { iso: string | null; now: number }) {
  if (!iso) return <>never</>;
  return <time dateTime={iso} title={when(iso)}>{ago(iso, now)}</time>;
}

function Failing({ task, now }: { task: Task; now: number }) {
  const e = task.error;
  if (!e) return <>—</>;
  return (
    <>
      <code data-testid="task-code">{errorLabel(e)}</code>
      {e.code && e.kind && <small> ({e.kind})</small>}{e.since && <> since <Since iso={e.since} now={now} /></>}
      {e.failures != null && <>, {e.failures} failed round{e.failures === 1 ? "" : "s"} in a row</>}
    </>
  );
}

function ProcessCell({ task, now }: { task: Task; now: number }) {
  if (!task.process) return <>this process</>;
  return (
    <>
      {task.process}{task.here && <small> (this process)</small>}
      {task.reportedAt && <><br /><small>reported <Since iso={task.reportedAt} now={now} /></small></>}
    </>
  );
}

function Tasks({ tasks, now }: { tasks: Task[]; now: number }) {
  if (!tasks.length) return null;
  const elsewhere = tasks.some((t) => t.process);
  return (
    <div className="scroll">
      {/* explicit roles: on a phone the rows are stacked (styles.css), which may drop a table's */}
      <table data-testid="background-tasks" className="tasks" role="table">
        <caption>Background tasks</caption>
        <thead><tr><th scope="col">Task</th>{elsewhere && <th scope="col">Process</th>}<th scope="col">Status</th>
          <th scope="col">Last success</th><th scope="col">Rounds</th><th scope="col">Failing</th></tr></thead>
        <tbody role="rowgroup">{tasks.map((t) => (
          <tr key={`${t.process ?? ""}/${t.name}`} data-task={t.name} data-light={t.light} role="row">
            <th scope="row" role="rowheader">{t.name}</th>
            {elsewhere && <td role="cell" data-label="Process"><ProcessCell task={t} now={now} /></td>}
            <td role="cell" data-label="Status"><Dot light={t.light} /><strong>{t.light}</strong>
              {t.standby && <small title="another process of the deployment runs it now"> standby</small>}</td>
            <td role="cell" data-label="Last success"><Since iso={t.lastOkAt} now={now} /></td>
            <td role="cell" data-label="Rounds">{t.rounds ?? "—"}</td>
            <td role="cell" data-label="Failing"><Failing task={t} now={now} /></td>
          </tr>))}</tbody>
      </table>
    </div>
  );
}

function Process({ process }: { process: ProcessInfo }) {
  const setting = process.setting === null ? "inherited" : `set to ${process.setting}`;
  return (
    <>
      <h3 id="health-process">This process</h3>
      <dl className="figures" data-testid="health-process" aria-labelledby="health-process">
        <div><dt>Role</dt><dd>{process.role}</dd></div>
        {process.pid !== null && <div><dt>PID</dt><dd>{process.pid}</dd></div>}
        <div><dt>Niceness</dt><dd>{process.niceness} <small>({setting})</small></dd></div>
      </dl>
    </>
  );
}

export function HealthLights() {
  const admin = useContext(SessionContext)?.me.role === "ADMIN";
  const [answer, skew] = useHealth(admin);
  const [, tick] = useState(0); // the relative times move on between answers
  useEffect(() => {
    const timer = window.setInterval(() => tick((n) => n + 1), 1000);
    return () => window.clearInterval(timer);
  }, []);
  const view = healthView(answer);
  const now = Date.now() + skew;
  return (
    <section className="health" aria-label="system health">
      <Overall view={view} />
      <ul className="lights" aria-label="parts">
        {view.lights.map(([name, status, detail]) => (
          <li key={name} title={detail}><Dot light={status} />{name}: <strong>{status}</strong></li>
        ))}
      </ul>
      <Tasks tasks={view.tasks} now={now} />
      {view.process && <Process process={view.process} />}
    </section>
  );
}
