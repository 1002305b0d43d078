// Whose money a page shows, impossible to miss: PAPER (simulated), SANDBOX (an exchange's
// testnet) or LIVE (real money, in red).
export type AccountMode = "PAPER" | "SANDBOX" | "LIVE";

export function modeOf(kind: string | undefined, sandbox?: boolean): AccountMode {
  if (kind === "LIVE") return sandbox ? "SANDBOX" : "LIVE";
  return "PAPER";
}

const TEXT: Record<AccountMode, string> = {
  PAPER: "PAPER — simulated money, no exchange orders",
  SANDBOX: "SANDBOX — the exchange's testnet, no real money",
  LIVE: "LIVE — real money on the exchange",
};

export function Banner({ modes }: { modes: AccountMode[] }) {
  const unique = [...new Set(modes)];
  if (!unique.length) return null;
  return (
    <div className="banners" role="status" aria-label="account mode">
      {unique.map((m) => (
        <div key={m} className={`banner banner-${m.toLowerCase()}`} data-testid="mode-banner">
          {TEXT[m]}
        </div>
      ))}
    </div>
  );
}
