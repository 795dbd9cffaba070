"""Where a debate or verdict came from: the code version that produced it."""

import functools
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def code_version() -> str:
    """DEBATELAB_VERSION when set (images), else the git commit of the checkout, else 'unknown'."""
    if os.environ.get("DEBATELAB_VERSION"):
        return os.environ["DEBATELAB_VERSION"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}{'+dirty' if dirty else ''}" if commit else "unknown"
