"""The scheduler: hooks and database schedules turned into jobs at the right time."""
