"""The notes in Django's admin (/admin/notes/note/), found by the admin's autodiscovery."""

from django.contrib import admin

from .models import Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["title", "created"]
    search_fields = ["title", "body"]
