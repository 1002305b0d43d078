"""Funding plans and wallet requirements: walletRequirements, fundingPlans, fundingPlan,
cancelFundingPlan, depositToPaperAccount, withdrawFromPaperAccount."""
