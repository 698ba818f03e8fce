"""The write every kind of writer does: read the writer's row count, then insert its next row."""

from django.db import transaction


def write_row(writer: str) -> int:
    """Add row number N for ``writer``, N being the rows it has; return N (Django thread or cell)."""
    from ledger.models import Entry

    # Read, then write, in one transaction: on SQLite this needs BEGIN IMMEDIATE,
    # or the read lock's upgrade fails at once when another writer got in between.
    with transaction.atomic():
        seq = Entry.objects.filter(writer=writer).count()
        Entry.objects.create(writer=writer, seq=seq)
    return seq
