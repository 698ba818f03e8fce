from django.db import models


class Message(models.Model):
    """One chat line."""

    name = models.CharField(max_length=40)
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name}: {self.text}"

    def as_dict(self):
        """Return the message as sent on the websocket."""
        return {"id": self.id, "name": self.name, "text": self.text, "created": self.created.isoformat()}
