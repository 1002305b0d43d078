// Backtests run on the server (runBacktest): see pages/backtest/.
export function BacktestPage() {
  return <><h1>Backtest</h1><p>Backtests from the dashboard need the server's runBacktest.</p></>;
}
