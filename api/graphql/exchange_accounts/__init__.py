"""Exchange accounts: addExchangeAccount, exchangeAccounts, removeExchangeAccount."""
