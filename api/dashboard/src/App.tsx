import { useCallback, useEffect, useState } from "react";
import { accessToken, gql, onAuthChange, setTokens } from "./gql";
import { go, useRoute, type Route } from "./router";
import { ME, SessionContext, type Session } from "./session";
import { modeOf } from "./components/Banner";
import { AuthPage } from "./pages/Auth";
import { Overview } from "./pages/Overview";
import { BotsPage } from "./pages/Bots";
import { BotForm } from "./pages/BotForm";
import { BotDetail } from "./pages/BotDetail";
import { PortfolioPage } from "./pages/Portfolio";
import { BacktestPage } from "./pages/Backtest";
import { LeaderboardPage } from "./pages/Leaderboard";
import { AuditPage } from "./pages/Audit";
import { AdminPage } from "./pages/Admin";
import { TimeTravel } from "./pages/TimeTravel";

const NAV: [string, string][] = [
  ["/", "Overview"], ["/bots", "Bots"], ["/portfolio", "Portfolio"], ["/backtest", "Backtest"],
  ["/leaderboard", "Leaderboard"], ["/as-of", "As of"], ["/audit", "Audit log"],
];
const PUBLIC = new Set(["login", "register", "verify", "reset"]);

function page(route: Route) {
  const [head, id, sub] = route.path;
  switch (head ?? "") {
    case "": return <Overview />;
    case "bots":
      if (id === "new") return <BotForm />;
      if (id && sub === "edit") return <BotForm botId={id} />;
      return id ? <BotDetail botId={id} /> : <BotsPage />;
    case "portfolio": return <PortfolioPage />;
    case "backtest": return <BacktestPage />;
    case "leaderboard": return <LeaderboardPage />;
    case "as-of": return <TimeTravel />;
    case "audit": return <AuditPage />;
    case "admin": return <AdminPage />;
    default: return <p>No such page. <a href="#/">Back to the overview</a></p>;
  }
}

function useSessionState(onPublicPage: boolean): [Session | null, boolean] {
  const [session, setSession] = useState<Session | null>(null);
  const [token, setToken] = useState(accessToken());
  const [checked, setChecked] = useState(false);
  useEffect(() => onAuthChange(() => setToken(accessToken())), []);
  const load = useCallback(() => {
    if (!token) { setSession(null); setChecked(true); return; }
    gql(ME).then((d) => {
      const accounts = d.exchangeAccounts.edges.map((e: any) => ({
        ...e.node, mode: modeOf(e.node.kind, e.node.sandbox) }));
      setSession({ me: d.me, accounts, reload: load });
    }).catch(() => setSession(null)).finally(() => setChecked(true));
  }, [token, onPublicPage]); // read again on leaving e.g. the verify page
  useEffect(load, [load]);
  return [session, checked];
}

/** Unverified users may paper-trade; live trading waits for a verified address. */
function VerifyReminder({ email }: { email: string }) {
  const [sent, setSent] = useState<string | null>(null);
  const resend = () => gql(`mutation($e: String!) { resendVerification(email: $e) {
      ... on MailRequestPayload { accepted } ... on InputErrors { code message } } }`, { e: email })
    .then((d) => setSent(d.resendVerification.accepted ? "A new link is on its way." : d.resendVerification.message))
    .catch((e: Error) => setSent(e.message));
  return (
    <p className="reminder" role="status" data-testid="verify-reminder">
      Your email address is not verified yet: paper trading works, live trading waits for it.{" "}
      <button type="button" onClick={resend}>Send the link again</button>{" "}
      <a href="#/verify">I have a token</a> {sent}
    </p>
  );
}

export function App() {
  const route = useRoute();
  const head = route.path[0] ?? "";
  const [session, checked] = useSessionState(PUBLIC.has(head));
  if (PUBLIC.has(head) || (checked && !session)) {
    return <main id="main" className="auth"><AuthPage route={route} /></main>;
  }
  if (!session) return <main id="main"><p aria-busy="true">Loading…</p></main>;
  const nav = session.me.role === "ADMIN" ? [...NAV, ["/admin", "Admin"] as [string, string]] : NAV;
  return (
    <SessionContext.Provider value={session}>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content</a>
      <header className="top">
        <strong className="brand">Tradetape</strong>
        <nav aria-label="main">
          {nav.map(([path, label]) => (
            <a key={path} href={`#${path}`}
               aria-current={`/${head}` === path || (path === "/" && head === "") ? "page" : undefined}>
              {label}</a>
          ))}
        </nav>
        <span className="who">{session.me.email}</span>
        <button type="button" onClick={() => { setTokens(null, null); go("/login"); }}>Log out</button>
      </header>
      <main id="main" tabIndex={-1}>
        {!session.me.emailVerified && <VerifyReminder email={session.me.email} />}
        {page(route)}
      </main>
    </SessionContext.Provider>
  );
}
