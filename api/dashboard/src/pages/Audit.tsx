// The caller's own events (an administrator's: every event), newest first, page by page.
import { useEffect, useState } from "react";
import { gql } from "../gql";
import { when } from "../format";

const AUDIT = `query($after: String) { auditLog(first: 50, after: $after) {
  edges { node { position at recordedAt aggregateType aggregateId eventType actor summary } }
  pageInfo { hasNextPage endCursor } } }`;

export function AuditPage() {
  const [rows, setRows] = useState<any[]>([]);
  const [page, setPage] = useState<{ hasNextPage: boolean; endCursor: string | null }>({ hasNextPage: false, endCursor: null });
  const [error, setError] = useState<string | null>(null);
  const load = (after: string | null) => gql(AUDIT, { after }).then((d) => {
    setRows((r) => (after ? [...r, ...d.auditLog.edges.map((e: any) => e.node)] : d.auditLog.edges.map((e: any) => e.node)));
    setPage(d.auditLog.pageInfo);
  }).catch((e: Error) => setError(e.message));
  useEffect(() => { load(null); }, []);
  return (
    <>
      <h1>Audit log</h1>
      {error && <p className="error" role="alert">{error}</p>}
      <div className="scroll">
        <table data-testid="audit-table">
          <caption>Your events, newest first</caption>
          <thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Event</th><th scope="col">Of</th>
            <th scope="col">Actor</th><th scope="col">Summary</th></tr></thead>
          <tbody>{rows.map((r) => (
            <tr key={r.position}><td>{r.position}</td><td>{when(r.at)}</td><td>{r.eventType}</td>
              <td title={r.aggregateId}>{r.aggregateType}</td><td>{r.actor ?? "—"}</td><td>{r.summary}</td></tr>))}</tbody>
        </table>
      </div>
      {page.hasNextPage && <button type="button" onClick={() => load(page.endCursor)}>Older events</button>}
    </>
  );
}
