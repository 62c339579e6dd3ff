"""The systems measured: one module each (``*_bench.py``, used by the harness) and, for the
peers, the module their own worker CLI imports (``*_tasks.py``: the app, the broker and the
tasks, which wrap the job bodies of ``bench_app/jobs.py``). Nothing is imported here: a peer's
worker imports only its own tasks module."""
