#!/usr/bin/env python3
"""jobbench from Django: a minimal project.

    jobbench init /tmp/wb && jobbench --bench /tmp/wb new-site site1
    cd examples
    JOBBENCH_BENCH=/tmp/wb JOBBENCH_SITE=site1 python django_app/manage.py runserver
    PYTHONPATH=. jobbench --bench /tmp/wb worker

    curl -X POST localhost:8000/jobs -H 'Content-Type: application/json' -d '{"x": 2, "y": 3}'
    curl localhost:8000/jobs/JOB_ID

Settings are in settings.py, the views in views.py, the site around each request in
middleware.py, the job in tasks.py. See docs/frameworks.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # examples/: django_app
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
