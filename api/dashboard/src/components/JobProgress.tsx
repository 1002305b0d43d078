// A background job's progress bar (a candle fetch, a rebuild), with its state and counts.
export function JobProgress({ id, what, state, unit, done, total, fraction }: {
  id: string; what: string; state?: string; unit: string; done?: number; total?: number; fraction?: string;
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{what}: <span data-testid={`${id}-status`}>{state ?? "starting"}</span>
        {done !== undefined ? ` (${done} of ${total} ${unit})` : ""}</label>
      <progress id={id} className="progress" max={1} value={Number(fraction ?? 0)} />
    </div>
  );
}
