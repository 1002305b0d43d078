"""Risk limits (``riskLimits``, ``setRiskLimits``) and the paper → live promotion gate
(``promotionCheck``, ``promoteBot``)."""
