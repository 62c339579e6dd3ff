"""jobbench imports downward only: the import-linter contracts in pyproject.toml hold.

The layers and why they are so are in docs/architecture.md ("Layers"); `lint-imports` (from the
'test' extra) is the same check by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    # The venv's lint-imports (import-linter, from the 'test' extra), run by this interpreter
    # so that PATH does not matter; --no-cache so that a stale cache never hides a new import.
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    result = subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
