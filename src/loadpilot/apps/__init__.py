"""Applications loadpilot runs and balances: reference workloads with their own dependencies only."""
