// The as-of slider: the portfolio, one bot and the leaderboard as the event log had them at
// a past moment (portfolio(asOf), history(aggregateId, asOf), leaderboard(asOf)); our
// projections answer it.
import { useEffect, useState } from "react";
import { Banner } from "../components/Banner";
import { gql } from "../gql";
import { when } from "../format";
import { useQuery } from "../hooks";
import { PORTFOLIO_FIELDS } from "../queries";
import { useSession } from "../session";
import { LEADERBOARD, LeaderboardTable } from "./Leaderboard";
import { PortfolioFigures } from "./Portfolio";

const STEPS = 200;
const BOARD = `leaderboard(first: 20, asOf: $asOf) { ${LEADERBOARD} }`;
const AS_OF = `query($asOf: DateTime!, $bot: ID!) { portfolio(asOf: $asOf) { ${PORTFOLIO_FIELDS} } ${BOARD}
  history(aggregateId: $bot, asOf: $asOf) { version asOf state events { version type at } } }`;
const PORTFOLIO_ONLY = `query($asOf: DateTime!) { portfolio(asOf: $asOf) { ${PORTFOLIO_FIELDS} } ${BOARD} }`;

function BotAsOf({ history }: { history: any }) {
  if (!history) return <p data-testid="bot-as-of">The bot did not exist yet.</p>;
  const s = history.state ?? {};
  const last = history.events[history.events.length - 1];
  return (
    <dl className="figures" data-testid="bot-as-of">
      <div><dt>Version</dt><dd>{history.version}</dd></div>
      <div><dt>Status</dt><dd>{String(s.status ?? "—").toUpperCase()}</dd></div>
      <div><dt>Name</dt><dd>{String(s.name ?? "—")}</dd></div>
      <div><dt>Last event</dt><dd>{last ? `${last.type} at ${when(last.at)}` : "—"}</dd></div>
    </dl>
  );
}

export function TimeTravel() {
  const session = useSession();
  // Just after registration: the account and its paper deposit are recorded a moment after
  // the registration's own time.
  const start = new Date(session.me.registeredAt).getTime() + 1000;
  const [end] = useState(() => Date.now());
  const [step, setStep] = useState(STEPS);
  const [botId, setBotId] = useState("");
  const [answer, setAnswer] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  const bots = useQuery(`{ bots(first: 100) { edges { node { id name } } } }`);
  const asOf = new Date(start + ((end - start) * step) / STEPS).toISOString();
  useEffect(() => {
    const timer = window.setTimeout(() => {
      const ask = botId ? gql(AS_OF, { asOf, bot: botId }) : gql(PORTFOLIO_ONLY, { asOf });
      ask.then((d) => { setAnswer(d); setError(null); }).catch((e: Error) => setError(e.message));
    }, 250); // a dragged slider asks once it rests
    return () => window.clearTimeout(timer);
  }, [asOf, botId]);
  return (
    <>
      <Banner modes={session.accounts.map((a) => a.mode)} />
      <h1>As of a past moment</h1>
      <div className="field">
        <label htmlFor="as-of">As of <output htmlFor="as-of" data-testid="as-of-time">{when(asOf)}</output> UTC</label>
        <input id="as-of" type="range" min={0} max={STEPS} step={1} value={step}
               onChange={(e) => setStep(Number(e.target.value))} aria-valuetext={when(asOf)} />
      </div>
      <div className="field">
        <label htmlFor="as-of-bot">Bot</label>
        <select id="as-of-bot" value={botId} onChange={(e) => setBotId(e.target.value)}>
          <option value="">(none)</option>
          {(bots.data?.bots.edges ?? []).map((e: any) => <option key={e.node.id} value={e.node.id}>{e.node.name}</option>)}
        </select>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <h2>Portfolio</h2>
      {answer?.portfolio && <PortfolioFigures p={answer.portfolio} />}
      {botId && answer && <><h2>Bot</h2><BotAsOf history={answer.history} /></>}
      <h2>Leaderboard</h2>
      {answer?.leaderboard && <LeaderboardTable entries={answer.leaderboard} />}
    </>
  );
}
