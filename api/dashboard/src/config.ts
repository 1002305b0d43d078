// A DCA configuration as the forms hold it (text) and as the API takes it (DcaConfigInput).
export const CONFIG_DEFAULTS: Record<string, string> = {
  pair: "BTC/USDT", baseOrderQuote: "100", safetyOrderQuote: "50", maxSafetyOrders: "3",
  priceDeviationPct: "1", safetyVolumeScale: "1.5", safetyStepScale: "1.2", takeProfitPct: "1",
  stopLossPct: "", trailingTakeProfitPct: "", cooldownSeconds: "0",
};

export const CONFIG_FIELDS: [string, string, string?][] = [
  ["pair", "Pair"], ["baseOrderQuote", "Base order (quote)"], ["safetyOrderQuote", "Safety order (quote)"],
  ["maxSafetyOrders", "Max safety orders"], ["priceDeviationPct", "Price deviation %", "drop before the first safety order"],
  ["safetyVolumeScale", "Safety volume scale"], ["safetyStepScale", "Safety step scale"],
  ["takeProfitPct", "Take profit %"], ["stopLossPct", "Stop loss % (optional)"],
  ["trailingTakeProfitPct", "Trailing take profit % (optional)"], ["cooldownSeconds", "Cooldown (seconds)"],
];

const OPTIONAL = new Set(["stopLossPct", "trailingTakeProfitPct"]);
export const isOptional = (name: string) => OPTIONAL.has(name);

export function configInput(v: Record<string, string>) {
  return {
    pair: v.pair, baseOrderQuote: v.baseOrderQuote, safetyOrderQuote: v.safetyOrderQuote,
    maxSafetyOrders: Number(v.maxSafetyOrders), priceDeviationPct: v.priceDeviationPct,
    safetyVolumeScale: v.safetyVolumeScale, safetyStepScale: v.safetyStepScale,
    takeProfitPct: v.takeProfitPct, stopLossPct: v.stopLossPct || null,
    trailingTakeProfitPct: v.trailingTakeProfitPct || null, cooldownSeconds: Number(v.cooldownSeconds || 0),
  };
}
