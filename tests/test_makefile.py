"""The README's two commands: `make demo` installs only the core, `make test` everything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, venv: Path) -> list[str]:
    # Under `make test` this runs inside make: no "Entering directory" lines, no inherited flags.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return proc.stdout.splitlines()


def test_demo_on_a_fresh_machine_installs_only_the_core(tmp_path: Path) -> None:
    lines = dry_run("demo", tmp_path / "venv")
    installs = [line for line in lines if "pip install" in line]
    assert installs == [
        f"{tmp_path}/venv/bin/python -m pip install -q --disable-pip-version-check -e ."
    ]
    assert lines[-1].endswith("examples/demo.py")


def test_test_on_a_fresh_machine_installs_the_dev_extra(tmp_path: Path) -> None:
    lines = dry_run("test", tmp_path / "venv")
    assert any("pip install" in line and ".[dev]" in line for line in lines)
    assert any(line.endswith("-m pytest") for line in lines)


def test_the_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[2:6] if line.startswith("make")]
    assert commands == ["make demo", "make test"]
