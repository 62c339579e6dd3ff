"""jobbench from Flask: enqueue a job from a view and show its status (see app.py)."""
