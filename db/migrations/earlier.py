"""An earlier revision's module, for a migration that builds on (or, downgraded, puts back) what
an earlier one made: its SQL, its builders, its columns.

Here, beside the versions directory and not in it: Alembic loads every .py file there as a
revision, and refuses one that names none."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).with_name("versions")


def migration(file: str) -> ModuleType:
    """The revision in `file` of the versions directory, loaded afresh: callers swap names in
    what they load (`swapped`), and a module shared between them would carry one's swaps into
    another's SQL."""
    path = VERSIONS / file
    spec = importlib.util.spec_from_file_location(f"sinergi_migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def swapped(module: ModuleType, **names: object) -> None:
    """Give `module` these values for names it already has, so that its builders read them.

    A name it lacks is refused: assigned anyway, it would be a new attribute no builder reads,
    and the migration would silently make the old SQL."""
    missing = sorted(set(names) - set(vars(module)))
    assert not missing, f"{module.__name__} has no {', '.join(missing)}"
    vars(module).update(names)
