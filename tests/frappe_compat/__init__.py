"""Ports of Frappe's own background-job and scheduler tests, one test per Frappe case."""
