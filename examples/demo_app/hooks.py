"""Hooks of the demo app: what it adds to every site it is installed on."""

doctypes = ["demo_app.task.Task"]

scheduler_events = {
    "all": ["demo_app.tasks.count_open_tasks"],  # every scheduler_interval seconds
    "daily": ["demo_app.tasks.daily_summary"],
}
