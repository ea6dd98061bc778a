"""Where the shared third-party conformance corpus lives: it is read in place, never copied."""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = (_REPO.parent / "shared" / "conformance", Path("/work/shared/conformance"))


def conformance_dir() -> Path:
    """Return CASEWORK_CONFORMANCE_DIR, else ../shared/conformance beside the checkout, else /work/shared."""
    configured = os.environ.get("CASEWORK_CONFORMANCE_DIR")
    if configured:
        return Path(configured).resolve()
    return next((path for path in _CANDIDATES if path.is_dir()), _CANDIDATES[0])
