"""No tracked file points outside the repository to the development machines' spec folder.

That folder exists only where the project is developed; a clone has the same contracts in
``docs/input-format.md`` and ``docs/dataset.md``, and every reference must point there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Written in two pieces so that this file does not match itself.
FORBIDDEN = ("../" + "shared", "shared" + "/spec")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    return [REPO_ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_refers_to_the_spec_folder_outside_the_repository():
    files = tracked_files()
    assert any(p.name == "README.md" for p in files)
    found = []
    for path in files:
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        text = path.read_bytes()
        if b"\0" in text:  # binary (images, arrays)
            continue
        for number, line in enumerate(text.decode("utf-8", "replace").splitlines(), 1):
            if any(word in line for word in FORBIDDEN):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "references to a folder a clone does not have:\n" + "\n".join(found)


def test_the_contract_pages_are_in_the_repository():
    for page in ("input-format.md", "dataset.md"):
        assert (REPO_ROOT / "docs" / page).is_file()
