"""The code samples of the seed document run on jobbench with ``import jobbench as frappe``.

The samples are read from ``tests/data/seed/background-jobs.zh.md``, a verbatim copy of the
project's seed document (the repository stands on its own), so the blocks run exactly as
written there. Python blocks run inside a site context, in the
namespace of the module their dotted paths name (``app.module.folder``), so the functions they
define are importable by workers, as they would be in a real app. Shell blocks run with
``bench`` replaced by ``jobbench``.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobbench.bench import init_bench
from jobbench.sites import install_app, new_site

SEED = Path(__file__).resolve().parents[1] / "data" / "seed" / "background-jobs.zh.md"

APP_HOOKS = 'doctypes = ["app.task.Task"]\n'
APP_TASK = """
from jobbench.model import Document


class Task(Document):
    doctype = "Task"
    naming = "TASK-.###"

    subject: str = "seed"
    done_with: str | None = None

    def do_something(self, param=None):
        self.db_set("done_with", param)
        return param
"""


def blocks(lang: str) -> list[str]:
    if not SEED.exists():
        pytest.fail(f"seed document missing at {SEED}")
    text = SEED.read_text(encoding="utf-8")
    return [b for b in re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)]


def runnable_python() -> list[str]:
    """Python blocks that are code; the syntax blocks (calls with ``**kwargs`` and bare
    parameter names, like ``frappe.enqueue(method, ...)``) document signatures and are not."""
    found = []
    for block in blocks("python"):
        if "**kwargs" in block:
            continue
        try:
            ast.parse(block)
        except SyntaxError:
            continue
        found.append(block)
    return found


def seed_functions() -> str:
    """The functions the seed's samples define, as the module their dotted path names."""
    defs = [
        ast.unparse(node)
        for block in runnable_python()
        for node in ast.parse(block).body
        if isinstance(node, ast.FunctionDef)
    ]
    return "\n\n".join(defs) + "\n"


@pytest.fixture
def seed_bench(tmp_path: Path) -> Path:
    bench = init_bench(tmp_path / "bench")
    app = bench.path / "apps" / "app"
    (app / "module").mkdir(parents=True)
    for init in (app / "__init__.py", app / "module" / "__init__.py"):
        init.write_text("")
    (app / "hooks.py").write_text(APP_HOOKS)
    (app / "task.py").write_text(textwrap.dedent(APP_TASK))
    (app / "module" / "folder.py").write_text(seed_functions())
    new_site(bench, "seed.local")
    install_app(bench, "seed.local", "app")
    return bench.path


RUNNER = r"""
import importlib, sys
import jobbench as frappe
bench, code = sys.argv[1], sys.stdin.read()
with frappe.site_context("seed.local", bench):
    if not frappe.db.exists("Task", "TASK-001"):
        frappe.new_doc("Task").insert()
    module = importlib.import_module("app.module.folder")
    code = "import jobbench as frappe\n" + code  # the seed samples assume this import
    exec(compile(code, "seed-sample", "exec"), vars(module))
    frappe.db.commit()
    jobs = frappe.list_jobs()
    print(len(jobs))
"""


def run_python_block(bench: Path, block: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(bench)],
        input=block,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


def jobbench(bench: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobbench", "--bench", str(bench), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def job_rows(bench: Path) -> list[dict[str, object]]:
    out = jobbench(bench, "--site", "seed.local", "jobs", "list", "--format", "json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_enqueue_samples_run_and_a_worker_completes_them(seed_bench: Path) -> None:
    enqueue_blocks = [b for b in runnable_python() if "frappe.enqueue" in b]
    assert len(enqueue_blocks) == 2, "the seed has an enqueue and an enqueue_doc sample"
    total = 0
    for block in enqueue_blocks:
        total = run_python_block(seed_bench, block)
    assert total == 3  # two enqueue calls and one enqueue_doc
    for command in [b for b in blocks("bash") if "--burst" in b]:
        for line in command.strip().splitlines():
            argv = shlex.split(line)
            assert argv[0] == "bench"
            assert jobbench(seed_bench, *argv[1:]).returncode == 0
    jobbench(seed_bench, "worker", "--queue", "long", "--burst")
    rows = job_rows(seed_bench)
    assert {r["status"] for r in rows} == {"finished"}, rows
    assert sorted(r["queue"] for r in rows) == ["long", "short", "short"]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import jobbench as f\n"
            f"with f.site_context('seed.local', {str(seed_bench)!r}):\n"
            "    print(f.db.get_value('Task', 'TASK-001', 'done_with'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "value"


def test_custom_queue_sample_config_is_accepted(seed_bench: Path) -> None:
    (config_block,) = [json.loads(b) for b in blocks("json")]
    common = seed_bench / "sites" / "common_site_config.json"
    merged = json.loads(common.read_text()) | config_block
    common.write_text(json.dumps(merged))
    block = "frappe.enqueue('app.module.folder.long_running_job', queue='myqueue', "
    block += "param1='A', param2='B')\n"
    assert run_python_block(seed_bench, block) == 1
    (row,) = job_rows(seed_bench)
    assert (row["queue"], row["timeout"]) == ("myqueue", 5000)
    assert jobbench(seed_bench, "worker", "--queue", "myqueue", "--burst").returncode == 0
    assert job_rows(seed_bench)[0]["status"] == "finished"


def test_multi_queue_worker_commands_are_valid(seed_bench: Path) -> None:
    """The seed's long-running worker commands parse and name valid queues (run in burst)."""
    commands = [line for b in blocks("bash") for line in b.strip().splitlines()]
    assert "bench worker --queue short,default" in commands
    for line in commands:
        argv = shlex.split(line)
        if "--burst" not in argv:
            argv.append("--burst")
        result = jobbench(seed_bench, *argv[1:])
        assert result.returncode == 0, result.stderr
