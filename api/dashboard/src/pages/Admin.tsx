// For administrators: projections' lag, the emergency stop and resume.
import { useState } from "react";
import { describeErrors, Status } from "../components/Form";
import { HealthLights } from "../components/Health";
import { gql } from "../gql";
import { useQuery } from "../hooks";

const STATUS = `halted reason acceptingCommands health parts`;
const RESULT = `... on SystemStatus { ${STATUS} } ... on SystemErrors { code message errors { field message } }`;

export function AdminPage() {
  const q = useQuery(`{ systemStatus { ${STATUS} } }`);
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | null>(null);
  const s = q.data?.systemStatus;
  const run = (mutation: string) => {
    if (mutation === "emergencyStop" && !window.confirm("Stop all trading now?")) return;
    gql(`mutation($r: String!) { ${mutation}(reason: $r) { ${RESULT} } }`, { r: reason || "from the dashboard" })
      .then((d) => setError(describeErrors(d[mutation]))).catch((e: Error) => setError(e.message)).finally(q.refetch);
  };
  const lag = s?.parts?.projections?.lag ?? {};
  return (
    <>
      <h1>Administration</h1>
      <HealthLights />
      <h2>Projections</h2>
      <table>
        <caption>Lag behind the event log (events)</caption>
        <thead><tr><th scope="col">Projection</th><th scope="col">Lag</th></tr></thead>
        <tbody>{Object.entries(lag).map(([name, n]) => <tr key={name}><td>{name}</td><td>{String(n)}</td></tr>)}</tbody>
      </table>
      <p>Rebuild a projection with <code>tradetape projections rebuild NAME</code>; users are managed with
        <code> tradetape users block|unblock EMAIL</code>.</p>
      <h2>Emergency stop</h2>
      <p role="status">Trading is <strong>{s ? (s.halted ? `halted (${s.reason ?? ""})` : "running") : "…"}</strong></p>
      <div className="field">
        <label htmlFor="f-reason">Reason</label>
        <input id="f-reason" value={reason} onChange={(e) => setReason(e.target.value)} />
      </div>
      <Status error={error} />
      <button type="button" className="danger" onClick={() => run("emergencyStop")}>Emergency stop</button>{" "}
      <button type="button" onClick={() => run("emergencyResume")}>Resume</button>
    </>
  );
}
