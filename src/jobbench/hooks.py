"""Hooks of the built-in app ``jobbench``, loaded first on every site (like frappe/hooks.py).

The loader of apps' hooks lives in ``jobbench.apps``; this module is data only.
"""

doctypes = [
    "jobbench.doctypes.system_settings.SystemSettings",
    "jobbench.doctypes.error_log.ErrorLog",
    "jobbench.doctypes.background_task.BackgroundTask",
    "jobbench.doctypes.scheduler_event.SchedulerEvent",
    "jobbench.doctypes.scheduled_job_type.ScheduledJobType",
    "jobbench.doctypes.scheduled_job_log.ScheduledJobLog",
]
