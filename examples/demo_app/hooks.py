"""Hooks of the demo app: what it adds to every site it is installed on."""

doctypes = ["demo_app.task.Task"]
