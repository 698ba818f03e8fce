from django.db import models


class Entry(models.Model):
    writer = models.CharField(max_length=60)
    seq = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["writer", "seq"], name="ledger_entry_writer_seq")]
