"""Every schema's Alembic history is one straight line: branches merged from parallel work must
be re-chained, or `revisit migrate` would stop at "multiple heads" on a fresh database."""

from __future__ import annotations

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from revisit.migrate import migration_locations


@pytest.mark.parametrize("schema", sorted(migration_locations()))
def test_each_schema_has_exactly_one_head_and_no_branch(schema: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migration_locations()[schema]))
    script = ScriptDirectory.from_config(cfg)
    heads = script.get_heads()
    assert len(heads) == 1, f"{schema}: several heads {heads}"
    for revision in script.walk_revisions():
        assert not revision.is_branch_point, f"{schema}: {revision.revision} is a branch point"
