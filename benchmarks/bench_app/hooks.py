"""Hooks of the benchmark app: it adds no doctypes and no hooks, only job functions."""

doctypes: list[str] = []
