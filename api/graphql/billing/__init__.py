"""Plans, the caller's subscription and entitlements, checkout, cancelling and history."""
