"""The benchmark harness: processes, scenarios and the report, shared by every system."""
