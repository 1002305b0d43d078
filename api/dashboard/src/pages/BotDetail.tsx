// One bot: its figures and actions, the price chart with its fills, the open deal's levels,
// its deals with their orders, and a CSV export. Live over the bot's event subscription.
import { Fragment, useState } from "react";
import { Banner, modeOf } from "../components/Banner";
import { BotActions } from "../components/BotActions";
import { EquityChart } from "../components/Equity";
import { LiveChart } from "../components/LiveChart";
import { amount, download, money, pct, signClass, toCsv, when } from "../format";
import { describeErrors } from "../components/Form";
import { gql } from "../gql";
import { go } from "../router";
import { useLiveRefetch, useQuery } from "../hooks";
import { BOT_FIELDS, DEAL_ROW } from "../queries";
import { useSession } from "../session";

const ORDER = "id side type purpose safetyOrder price amount filled averagePrice fees status createdAt";
// Deals carry their orders and fills: a page of 20 stays within the API's cost limit.
const DEALS = `deals(botId: $id, first: 20, after: $after) { pageInfo { hasNextPage endCursor }
  edges { node { ${DEAL_ROW} takeProfitPrice stopLossPrice fills { side price amount fee safetyOrder at }
  orders { ${ORDER} } } } }`;
const DETAIL = `query($id: ID!, $after: String) { bot(id: $id) { ${BOT_FIELDS} configVersion createdAt } ${DEALS} }`;
const DEALS_PAGE = `query($id: ID!, $after: String) { ${DEALS} }`;
const EVENTS = "subscription($id: ID!) { botEvents(botId: $id) { type version } }";

async function allDeals(botId: string): Promise<any[]> {
  const deals: any[] = [];
  let after: string | null = null;
  do {
    const d: any = await gql(DEALS_PAGE, { id: botId, after });
    deals.push(...d.deals.edges.map((e: any) => e.node));
    after = d.deals.pageInfo.hasNextPage ? d.deals.pageInfo.endCursor : null;
  } while (after);
  return deals;
}

async function exportCsv(bot: any) {
  const deals = await allDeals(bot.id);
  const rows = [["deal", "status", "opened", "closed", "reason", "safety_orders", "cost", "realized_pnl",
    "order_side", "order_purpose", "order_price", "order_amount", "order_filled", "order_status"]];
  for (const d of deals) {
    for (const o of d.orders.length ? d.orders : [{}]) {
      rows.push([d.id, d.status, d.openedAt, d.closedAt, d.closeReason, d.safetyOrdersUsed, d.cost,
        d.realizedPnl, o.side, o.purpose, o.price ?? o.averagePrice, o.amount, o.filled, o.status]);
    }
  }
  download(`${bot.name}-deals.csv`, toCsv(rows));
}

function Orders({ orders }: { orders: any[] }) {
  return (
    <table className="orders">
      <caption>Orders</caption>
      <thead><tr><th scope="col">Created</th><th scope="col">Side</th><th scope="col">Purpose</th><th scope="col">Type</th>
        <th scope="col">Price</th><th scope="col">Amount</th><th scope="col">Filled</th><th scope="col">Status</th></tr></thead>
      <tbody>{orders.map((o) => (
        <tr key={o.id}><td>{when(o.createdAt)}</td><td>{o.side}</td><td>{o.purpose}{o.safetyOrder ? ` ${o.safetyOrder}` : ""}</td>
          <td>{o.type}</td><td>{money(o.averagePrice ?? o.price)}</td><td>{amount(o.amount)}</td>
          <td>{amount(o.filled)}</td><td>{o.status}</td></tr>))}
      </tbody>
    </table>
  );
}

function Deals({ deals }: { deals: any[] }) {
  const [open, setOpen] = useState<string | null>(null);
  return (
    <div className="scroll">
      <table data-testid="deals-table">
        <caption>Deals, newest first (the latest 20; the CSV export has them all)</caption>
        <thead><tr><th scope="col">Opened</th><th scope="col">Closed</th><th scope="col">Status</th><th scope="col">Reason</th>
          <th scope="col">Safety orders</th><th scope="col">Average entry</th><th scope="col">P/L</th><th scope="col">Orders</th></tr></thead>
        <tbody>{deals.map((d) => (
          <Fragment key={d.id}>
            <tr>
              <td>{when(d.openedAt)}</td><td>{when(d.closedAt)}</td><td>{d.status}</td><td>{d.closeReason ?? "—"}</td>
              <td>{d.safetyOrdersUsed}</td><td>{money(d.averageEntry)}</td>
              <td className={signClass(d.realizedPnl)}>{money(d.realizedPnl)}</td>
              <td><button type="button" aria-expanded={open === d.id} onClick={() => setOpen(open === d.id ? null : d.id)}>
                {d.orders.length} orders</button></td>
            </tr>
            {open === d.id && <tr><td colSpan={8}><Orders orders={d.orders} /></td></tr>}
          </Fragment>))}
        </tbody>
      </table>
    </div>
  );
}

/** Archive the bot (deleteBot): stopped, left out of lists, its deals and history kept. */
function DeleteBot({ bot }: { bot: any }) {
  const [error, setError] = useState<string | null>(null);
  const run = async (closeDeal: boolean) => {
    const d = await gql(`mutation($id: ID!, $close: Boolean) { deleteBot(id: $id, closeDeal: $close) {
      ... on Bot { id } ... on BotErrors { code message errors { field message } } } }`, { id: bot.id, close: closeDeal });
    return d.deleteBot;
  };
  const remove = async () => {
    if (!window.confirm(`Delete ${bot.name}? It stops and leaves your lists; its history is kept.`)) return;
    try {
      let answer = await run(false);
      if (answer.code === "DEAL_OPEN" && window.confirm("It has an open deal: sell it at market and delete?")) {
        answer = await run(true);
      }
      const refused = describeErrors(answer);
      if (refused) setError(refused); else go("/bots");
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <>
      <button type="button" className="danger" onClick={remove}>Delete</button>
      {error && <span className="error" role="alert"> {error}</span>}
    </>
  );
}

/** From a little before the oldest deal shown (or the bot's creation). */
function chartStart(bot: any, deals: any[]): string {
  const times = [bot.createdAt, ...deals.map((d) => d.openedAt)].map((t) => new Date(t).getTime());
  return new Date(Math.min(...times) - 60_000).toISOString();
}

export function BotDetail({ botId }: { botId: string }) {
  const session = useSession();
  const q = useQuery(DETAIL, { id: botId, after: null });
  useLiveRefetch(q.refetch, EVENTS, { id: botId });
  const bot = q.data?.bot;
  if (q.error) return <p className="error" role="alert">{q.error}</p>;
  if (!bot) return <p aria-busy="true">{q.loading ? "Loading…" : "No such bot."}</p>;
  const deals = q.data.deals?.edges.map((e: any) => e.node) ?? [];
  const account = session.accounts.find((a) => a.id === bot.exchangeAccountId);
  const o = bot.openDeal;
  return (
    <>
      <Banner modes={[account?.mode ?? modeOf(bot.mode)]} />
      <h1>{bot.name} <span className={`status status-${bot.status.toLowerCase()}`} data-testid="bot-status">{bot.status}</span></h1>
      <p>{bot.pair} · realized <span className={signClass(bot.pnl?.realizedPnl)}>{money(bot.pnl?.realizedPnl)}</span> ·
        ROI {pct(bot.pnl?.roi)} · {bot.dealsClosed} deals closed</p>
      {bot.errorReason && <p className="error">{bot.errorReason}</p>}
      {bot.warning && <p className="warning">{bot.warning}</p>}
      <p><BotActions bot={bot} onDone={q.refetch} /> <a className="button" href={`#/bots/${bot.id}/edit`}>Edit</a>{" "}
        <button type="button" onClick={() => exportCsv(bot)}>Export deals as CSV</button>{" "}
        <DeleteBot bot={bot} /></p>
      {o && <p data-testid="open-deal">Open deal: average entry {money(o.averageEntry)}, take profit {money(o.takeProfitPrice)},
        stop loss {money(o.stopLossPrice)}, mark {money(o.markPrice)}, {o.safetyOrdersUsed} safety orders used,
        unrealized <span className={signClass(o.unrealizedPnl)}>{money(o.unrealizedPnl)}</span></p>}
      <LiveChart pair={bot.pair} since={chartStart(bot, deals)} deals={deals} openDeal={o} />
      <h2>Equity</h2>
      <EquityChart since={bot.createdAt} botId={bot.id} />
      <h2>Deals</h2>
      <Deals deals={deals} />
    </>
  );
}
