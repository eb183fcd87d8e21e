"""Where improv finds its shipped models, soundfonts and data."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository checkout improv runs from (installed in editable mode).
REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
#: The model every command uses when no ``--model`` is given.
DEFAULT_MODEL = MODELS_DIR / "default"
#: The shared data folder, beside the checkout.
DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def default_model_dir() -> Path:
    """Return ``$IMPROV_MODEL`` if set, else the shipped default model folder."""
    return Path(os.environ.get("IMPROV_MODEL") or DEFAULT_MODEL)


def resolve_data(path: str | os.PathLike) -> Path:
    """Return ``path``; a relative one that is missing here is tried from the checkout."""
    p = Path(path)
    if not p.exists() and not p.is_absolute() and (REPO_ROOT / p).exists():
        return REPO_ROOT / p
    return p
