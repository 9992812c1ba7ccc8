"""Overdue follow-up (dunning): reminders, the penalty notice and the block (issue 17)."""
