"""Index schema migrations: ordered steps per backend, each bringing the schema to its version.

A step that `rebuilds` drops what the index held and creates its tables anew; the caller then
refills them from the session files (they are the record). Others change the schema in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    statements: tuple[str, ...]
    rebuild: bool = False  # start from empty tables: the index is refilled from the files


def pending(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The steps past `current`, in order. After a rebuild step the ones before it do not matter."""
    steps = [migration for migration in migrations if migration.version > current]
    rebuilds = [number for number, migration in enumerate(steps) if migration.rebuild]
    return steps[rebuilds[-1] :] if rebuilds else steps


def latest(migrations: Sequence[Migration]) -> int:
    return migrations[-1].version


def apply_pending(
    run: Callable[[str], object], migrations: Sequence[Migration], current: int, tables: Sequence[str]
) -> bool:
    """Run the steps past `current` through `run` (one SQL text each); True if a step rebuilt the tables.

    A rebuild drops `tables` first: what they held is refilled from the session files.
    """
    steps = pending(migrations, current)
    rebuild = any(step.rebuild for step in steps)
    if rebuild:
        for table in tables:
            run(f"DROP TABLE IF EXISTS {table}")
    for step in steps:
        for statement in step.statements:
            run(statement)
    return rebuild
