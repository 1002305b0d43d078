// For administrators: health, users (block / unblock), projections' lag and rebuild,
// emergency stop.
import { useState } from "react";
import { describeErrors, Status } from "../components/Form";
import { HealthLights } from "../components/Health";
import { gql } from "../gql";
import { when } from "../format";
import { useQuery } from "../hooks";
import { useSession } from "../session";
import { Projections } from "./admin/Projections";

const STATUS = `halted reason acceptingCommands health parts`;
const RESULT = `... on SystemStatus { ${STATUS} } ... on SystemErrors { code message errors { field message } }`;
const USERS = `query($after: String) { users(first: 100, after: $after) {
  edges { node { id email displayName role emailVerified blocked erased registeredAt } } pageInfo { hasNextPage endCursor } } }`;
const USER_RESULT = `... on User { id blocked } ... on AdminErrors { code message errors { field message } }`;

function Users() {
  const me = useSession().me;
  const q = useQuery(USERS, { after: null });
  const [error, setError] = useState<string | null>(null);
  const users = q.data?.users.edges.map((e: any) => e.node) ?? [];
  const flip = (user: any) => {
    const mutation = user.blocked ? "unblockUser" : "blockUser";
    if (!user.blocked && !window.confirm(`Block ${user.email}? Their sessions end and their running bots pause.`)) return;
    gql(`mutation($id: ID!) { ${mutation}(id: $id) { ${USER_RESULT} } }`, { id: user.id })
      .then((d) => setError(describeErrors(d[mutation]))).catch((e: Error) => setError(e.message)).finally(q.refetch);
  };
  return (
    <>
      <Status error={error ?? q.error} />
      <div className="scroll">
        <table data-testid="users-table">
          <caption>Users, oldest first</caption>
          <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Verified</th>
            <th scope="col">Registered</th><th scope="col">State</th><th scope="col">Action</th></tr></thead>
          <tbody>{users.map((u: any) => (
            <tr key={u.id} data-user={u.email}>
              <td>{u.email}</td><td>{u.displayName ?? "—"}</td><td>{u.role}</td><td>{u.emailVerified ? "yes" : "no"}</td>
              <td>{when(u.registeredAt)}</td><td data-testid="user-state">{u.erased ? "forgotten" : u.blocked ? "blocked" : "active"}</td>
              <td>{!u.erased && u.id !== me.id && <button type="button" className={u.blocked ? "" : "danger"} onClick={() => flip(u)}
                    aria-label={`${u.blocked ? "Unblock" : "Block"} ${u.email}`}>{u.blocked ? "Unblock" : "Block"}</button>}</td>
            </tr>))}</tbody>
        </table>
      </div>
    </>
  );
}

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
  return (
    <>
      <h1>Administration</h1>
      <h2>Health</h2>
      <HealthLights />
      <h2>Users</h2>
      <Users />
      <h2>Projections</h2>
      <Projections />
      <h2>Emergency stop</h2>
      <p role="status">Trading is <strong data-testid="trading-state">{s ? (s.halted ? `halted (${s.reason ?? ""})` : "running") : "…"}</strong></p>
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
