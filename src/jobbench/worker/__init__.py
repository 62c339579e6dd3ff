"""Workers: a supervising parent (worker.py) around a reusable executor (executor.py)."""
