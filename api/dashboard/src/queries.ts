// The GraphQL documents the pages share.
export const BOT_FIELDS = `id name status mode pair dealsOpened dealsClosed dealsCancelled
  exchangeAccountId errorReason warning
  openDeal { id safetyOrdersUsed averageEntry takeProfitPrice stopLossPrice markPrice unrealizedPnl }
  pnl { realizedPnl unrealizedPnl fees roi winRate }`;

export const BOTS = `{ bots(first: 100) { edges { node { ${BOT_FIELDS} } } } }`;

export const PORTFOLIO_FIELDS = `asOf realizedPnl unrealizedPnl fees dealsClosed dealsOpen wins
  losses winRate profitFactor maxDrawdown capitalCommitted roi position
  balances { accountId asset free locked total }`;

export const DEAL_ROW = `id botId pair status openedAt closedAt closeReason realizedPnl
  averageEntry safetyOrdersUsed cost units fees`;

export const BOT_ACTION = (name: string, extra = "") => `mutation($id: ID!) { ${name}(id: $id${extra}) {
  ... on Bot { id status } ... on BotErrors { code message errors { field message } } } }`;
