"""Spending caps of customer contracts: at most so much per period (issue 17)."""
