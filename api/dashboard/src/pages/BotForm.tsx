// Create or edit a DCA bot, with the ladder the configuration would place, previewed as it
// is typed (dcaPlan), and optionally start it at once.
import { useEffect, useState, type FormEvent } from "react";
import { Banner } from "../components/Banner";
import { describeErrors, Field, Status } from "../components/Form";
import { ConfigFields } from "../components/ConfigFields";
import { Ladder } from "../components/Ladder";
import { CONFIG_DEFAULTS, configInput } from "../config";
import { gql } from "../gql";
import { useQuery } from "../hooks";
import { go } from "../router";
import { useSession } from "../session";
import { BOT_ACTION } from "../queries";

const DEFAULTS: Record<string, string> = { name: "", ...CONFIG_DEFAULTS };
const CONFIG = `config { pair baseOrderQuote safetyOrderQuote maxSafetyOrders priceDeviationPct
  safetyVolumeScale safetyStepScale takeProfitPct stopLossPct trailingTakeProfitPct cooldownSeconds }`;
const PLAN = `query($c: DcaConfigInput!, $p: String!) { dcaPlan(config: $c, price: $p) {
  ... on DcaPlan { levels { n deviationPct price quote units totalQuote totalUnits averagePrice takeProfitPrice stopLossPrice } }
  ... on InputErrors { code message errors { field message } } } }`;
const RESULT = "... on Bot { id status } ... on BotErrors { code message errors { field message } }";

function usePreview(values: Record<string, string>, price: string) {
  const [plan, setPlan] = useState<{ levels: any[]; error: string | null }>({ levels: [], error: null });
  const key = JSON.stringify([values, price]);
  useEffect(() => {
    const timer = window.setTimeout(() => {
      gql(PLAN, { c: configInput(values), p: price })
        .then((d) => setPlan({ levels: d.dcaPlan.levels ?? [], error: describeErrors(d.dcaPlan) }))
        .catch((e: Error) => setPlan({ levels: [], error: e.message }));
    }, 300);
    return () => window.clearTimeout(timer);
  }, [key]);
  return plan;
}

export function BotForm({ botId }: { botId?: string }) {
  const session = useSession();
  const [values, setValues] = useState(DEFAULTS);
  const [price, setPrice] = useState("60000");
  const [priceTyped, setPriceTyped] = useState(false);
  const [startNow, setStartNow] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const existing = useQuery(`query($id: ID!) { bot(id: $id) { id name status ${CONFIG} } }`, { id: botId }, !botId);
  const mark = useQuery(`query($pair: String!) { markPrice(pair: $pair) }`, { pair: values.pair });
  useEffect(() => {
    const bot = existing.data?.bot;
    if (!bot?.config) return;
    const v = Object.fromEntries(Object.entries(bot.config).map(([k, x]) => [k, x === null ? "" : String(x)]));
    setValues({ ...DEFAULTS, ...v, name: bot.name });
  }, [existing.data]);
  useEffect(() => { // the market's price, until the trader types another
    if (mark.data?.markPrice && !priceTyped) setPrice(mark.data.markPrice);
  }, [mark.data]);
  const plan = usePreview(values, price);
  const set = (name: string) => (e: { target: HTMLInputElement }) => setValues({ ...values, [name]: e.target.value });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const d = botId
        ? await gql(`mutation($id: ID!, $in: UpdateBotInput!) { updateBot(id: $id, input: $in) { ${RESULT} } }`,
            { id: botId, in: { name: values.name, config: configInput(values) } })
        : await gql(`mutation($n: String!, $c: DcaConfigInput!) { createBot(name: $n, config: $c) { ${RESULT} } }`,
            { n: values.name, c: configInput(values) });
      const bot = botId ? d.updateBot : d.createBot;
      const refused = describeErrors(bot);
      if (refused) { setError(refused); return; }
      if (!botId && startNow) {
        const s = await gql(BOT_ACTION("startBot"), { id: bot.id });
        const notStarted = describeErrors(s.startBot);
        if (notStarted) { setError(`Created, but not started: ${notStarted}`); return; }
      }
      go(`/bots/${bot.id}`);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const paper = session.accounts.find((a) => a.mode === "PAPER");
  return (
    <>
      <Banner modes={[paper?.mode ?? "PAPER"]} />
      <h1>{botId ? `Edit ${values.name}` : "New bot"}</h1>
      <div className="two">
        <form onSubmit={submit} aria-label={botId ? "edit bot" : "new bot"} className="bot-form">
          <Field label="Name" name="name" value={values.name} onChange={set("name")} required maxLength={100} />
          <ConfigFields values={values} onChange={(name, value) => setValues({ ...values, [name]: value })} />
          <Field label="Preview at price" name="previewPrice" value={price} onChange={(e) => { setPrice(e.target.value); setPriceTyped(true); }}
                 inputMode="decimal" hint="the market's price, for the ladder preview only" />
          {!botId && (
            <div className="field check">
              <input id="f-start" type="checkbox" checked={startNow} onChange={(e) => setStartNow(e.target.checked)} />
              <label htmlFor="f-start">Start it now (paper)</label>
            </div>
          )}
          <Status error={error} />
          <button type="submit">{botId ? "Save" : "Create bot"}</button>
        </form>
        <div>
          {plan.error && <p className="error" role="alert">{plan.error}</p>}
          <Ladder levels={plan.levels} />
        </div>
      </div>
    </>
  );
}
