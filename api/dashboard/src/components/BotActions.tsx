// Start / pause / stop buttons for one bot; each answers the bot's new status or its error.
import { useState } from "react";
import { gql } from "../gql";
import { BOT_ACTION } from "../queries";
import { describeErrors } from "./Form";

const ACTIONS: Record<string, [string, string, string][]> = {
  CREATED: [["startBot", "Start", ""]],
  RUNNING: [["pauseBot", "Pause", ""], ["stopBot", "Stop", ""]],
  PAUSED: [["startBot", "Resume", ""], ["stopBot", "Stop", ""]],
  ERROR: [["resetBotError", "Reset error", ""], ["stopBot", "Stop", ""]],
  STOPPED: [],
};

export function BotActions({ bot, onDone }: { bot: { id: string; name: string; status: string }; onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const act = (mutation: string) => {
    if (mutation === "stopBot" && !window.confirm(`Stop ${bot.name} for good?`)) return;
    setBusy(true);
    gql(BOT_ACTION(mutation), { id: bot.id })
      .then((d) => setError(describeErrors(d[mutation])))
      .catch((e: Error) => setError(e.message))
      .finally(() => { setBusy(false); onDone(); });
  };
  return (
    <span className="actions">
      {(ACTIONS[bot.status] ?? []).map(([mutation, label]) => (
        <button key={mutation} type="button" disabled={busy} onClick={() => act(mutation)}
                aria-label={`${label} ${bot.name}`}>{label}</button>
      ))}
      {error && <span className="error" role="alert">{error}</span>}
    </span>
  );
}
