"""The jobs of the Django example.

Workers import jobs by their dotted path (``django_app.tasks.add``), so they live in a module
that imports without Django and without the web app: run the worker with this folder's parent
(``examples/``) on ``PYTHONPATH``.
"""

from __future__ import annotations

import jobbench


def add(x: int, y: int) -> int:
    """Runs in a worker, inside the site the request was made for, as the requesting user."""
    jobbench.publish_progress(50, stage="adding")
    return x + y
