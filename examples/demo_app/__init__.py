"""A tiny example app: one doctype (Task) and a few functions to run as jobs."""
