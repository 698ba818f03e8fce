from django import forms
from django.shortcuts import get_object_or_404, redirect, render

from .models import Note


class NoteForm(forms.ModelForm):
    class Meta:
        model = Note
        fields = ["title", "body"]


def note_list(request):
    if request.method == "POST":
        form = NoteForm(request.POST)
        if form.is_valid():
            form.save()
            return redirect("notes:list")
    else:
        form = NoteForm()
    return render(request, "notes/list.html", {"notes": Note.objects.all(), "form": form})


def note_detail(request, pk):
    return render(request, "notes/detail.html", {"note": get_object_or_404(Note, pk=pk)})
