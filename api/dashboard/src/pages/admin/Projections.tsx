// The read models for administrators: each one's position and lag (`projections`), and a
// rebuild from the whole log (`rebuildProjections`) with its progress on the websocket.
import { useEffect, useState } from "react";
import { describeErrors, Status } from "../../components/Form";
import { JobProgress } from "../../components/JobProgress";
import { gql } from "../../gql";
import { useJobProgress, useQuery } from "../../hooks";

const STATES = `{ projections { name position lag stuck error } projectionRebuild { id status } }`;
const REBUILD = `mutation($names: [String!]) { rebuildProjections(names: $names) {
  ... on ProjectionRebuild { id status } ... on AdminErrors { code message errors { field message } } } }`;
const PROGRESS = `subscription($id: ID!) { projectionRebuildProgress(rebuildId: $id) {
  status names eventsDone eventsTotal fraction rebuiltTo errorCode errorMessage } }`;

export function Projections() {
  const q = useQuery(STATES);
  const [rebuildId, setRebuildId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const progress = useJobProgress<any>(PROGRESS, "projectionRebuildProgress", rebuildId);
  const latest = q.data?.projectionRebuild;
  // a rebuild under way when the page opened (another tab, another administrator): follow it
  useEffect(() => { if (!rebuildId && latest && ["queued", "running"].includes(latest.status)) setRebuildId(latest.id); }, [latest?.id]);
  useEffect(() => { if (progress && ["completed", "failed"].includes(progress.status)) q.refetch(); }, [progress?.status]);
  const busy = !!progress && !["completed", "failed"].includes(progress.status);
  const rebuild = (names: string[] | null) => {
    const what = names ? names.join(", ") : "every projection";
    if (!window.confirm(`Rebuild ${what} from the whole event log?`)) return;
    setError(null);
    gql(REBUILD, { names }).then((d) => {
      const refused = describeErrors(d.rebuildProjections);
      if (refused) setError(refused); else setRebuildId(d.rebuildProjections.id);
    }).catch((e: Error) => setError(e.message));
  };
  const states: any[] = q.data?.projections ?? [];
  return (
    <>
      <table data-testid="projections-table">
        <caption>Lag behind the event log (events)</caption>
        <thead><tr><th scope="col">Projection</th><th scope="col">Position</th><th scope="col">Lag</th>
          <th scope="col">State</th><th scope="col">Action</th></tr></thead>
        <tbody>{states.map((p) => (
          <tr key={p.name} data-projection={p.name}>
            <td>{p.name}</td><td>{p.position}</td><td>{p.lag}</td>
            <td title={p.error ?? undefined}>{p.stuck ? "stuck" : "following"}</td>
            <td><button type="button" disabled={busy} onClick={() => rebuild([p.name])}
                        aria-label={`Rebuild ${p.name}`}>Rebuild</button></td>
          </tr>))}</tbody>
      </table>
      <Status error={error ?? q.error ?? (progress?.status === "failed" ? `${progress.errorCode}: ${progress.errorMessage}` : null)}>
        {progress?.status === "completed" ? `Rebuilt ${progress.names.join(", ")} up to position ${progress.rebuiltTo}` : null}
      </Status>
      {rebuildId && <JobProgress id="rebuild" what="Rebuild" state={progress?.status} unit="events" done={progress?.eventsDone}
                                 total={progress?.eventsTotal} fraction={progress?.fraction} />}
      <button type="button" disabled={busy} onClick={() => rebuild(null)}>Rebuild all projections</button>
      <p>Readers keep the old tables until the rebuilt ones are swapped in; the server's
        projections then carry on from the new tables.</p>
    </>
  );
}
