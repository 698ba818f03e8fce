"""The notes applet's own tests, run by Django's test runner: ``hanji manage test notes``."""

from django.test import TestCase
from django.urls import reverse

from .models import Note


class NoteViewsTests(TestCase):
    def test_the_list_shows_the_notes(self):
        Note.objects.create(title="Buy milk")
        answer = self.client.get(reverse("notes:list"))
        self.assertEqual(answer.status_code, 200)
        self.assertContains(answer, "Buy milk")

    def test_a_valid_form_adds_a_note_and_redirects(self):
        answer = self.client.post(reverse("notes:list"), {"title": "Call Bob", "body": ""})
        self.assertRedirects(answer, reverse("notes:list"))
        self.assertTrue(Note.objects.filter(title="Call Bob").exists())

    def test_the_detail_of_a_note(self):
        note = Note.objects.create(title="Plan the trip")
        self.assertEqual(reverse("notes:detail", args=[note.pk]), f"/applets/notes/{note.pk}/")
        self.assertContains(self.client.get(reverse("notes:detail", args=[note.pk])), "Plan the trip")
