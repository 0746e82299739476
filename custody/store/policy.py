"""Policy templates: every template text a vault of this workspace was created or changed with."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custody.store.core import metadata, utcnow

# -- every template text a vault of this workspace was created or changed with, by keccak256 hash --------
# (the guard holds only the hash: verifiers need the text to know which rules — and attesters — applied)
templates = sa.Table(
    "templates",
    metadata,
    sa.Column("template_hash", sa.String(66), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def remember_template(conn: Connection, template_hash: str, source: str, path: str) -> None:
    """Keep a template text (idempotent)."""
    exists = conn.execute(
        sa.select(templates.c.template_hash).where(templates.c.template_hash == template_hash)
    ).first()
    if exists is None:
        conn.execute(
            templates.insert().values(template_hash=template_hash, source=source, path=path, recorded_at=utcnow())
        )
