from django.db import models

# MARK: the models test edits this line.


class Note(models.Model):
    text = models.CharField(max_length=100)

    class Meta:
        app_label = "reloadme"
