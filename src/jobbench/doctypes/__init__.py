"""Built-in doctypes, one module each; listed in ``jobbench/hooks.py`` like any app's."""
