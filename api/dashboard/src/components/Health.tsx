// Green/amber/red lights for the event store, projections, engine loop and market feed, as
// /health says (polled; /health is the server's own page, not the GraphQL API's).
import { useEffect, useState } from "react";

type Part = { status?: string; [key: string]: unknown };
type HealthAnswer = Record<string, Part | string>;

function feedLight(loop: Part | undefined): string {
  const market = loop?.market as Part | Part[] | undefined;
  const parts = Array.isArray(market) ? market : market ? [market] : [];
  if (!parts.length) return loop?.running ? "green" : "amber"; // the replayed market
  const bad = parts.some((p) => p.last_error);
  return bad ? "amber" : "green";
}

export function lights(h: HealthAnswer | null): [string, string, string][] {
  const part = (name: string) => (h?.[name] as Part | undefined);
  const status = (name: string) => part(name)?.status ?? "unknown";
  return [
    ["event store", status("event_store"), `head ${part("event_store")?.head ?? "?"}`],
    ["projections", status("projections"), `lag ${JSON.stringify(part("projections")?.lag ?? {})}`],
    ["engine loop", status("engine_loop"), `steps ${part("engine_loop")?.steps ?? "?"}`],
    ["feed", h ? feedLight(part("engine_loop")) : "unknown", "market data"],
  ];
}

export function HealthLights() {
  const [health, setHealth] = useState<HealthAnswer | null>(null);
  useEffect(() => {
    let stop = false;
    const poll = () => fetch("/health").then((r) => r.json()).then((h) => !stop && setHealth(h))
      .catch(() => !stop && setHealth(null));
    poll();
    const timer = window.setInterval(poll, 5000);
    return () => { stop = true; window.clearInterval(timer); };
  }, []);
  return (
    <ul className="lights" aria-label="system health">
      {lights(health).map(([name, status, detail]) => (
        <li key={name} title={detail}>
          <span className={`light light-${status}`} aria-hidden="true" />
          {name}: <strong>{status}</strong>
        </li>
      ))}
    </ul>
  );
}
