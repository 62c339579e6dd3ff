"""Settings of the minimal Django project (no Django database: jobbench keeps its own)."""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
ROOT_URLCONF = "django_app.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
MIDDLEWARE = ["django_app.middleware.JobbenchSiteMiddleware"]
USE_TZ = True

# Where jobbench is: the bench folder and the site every request works in.
JOBBENCH_BENCH = os.environ.get("JOBBENCH_BENCH")
JOBBENCH_SITE = os.environ.get("JOBBENCH_SITE", "site1")
