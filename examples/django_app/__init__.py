"""jobbench from Django: a minimal project that enqueues a job from a view (see views.py)."""
