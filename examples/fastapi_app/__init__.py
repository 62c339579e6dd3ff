"""jobbench from FastAPI: enqueue a job from an endpoint and show its status (see app.py)."""
