from django.shortcuts import render


def page(request):
    """A page rendered from templates/reloadme/page.html through Django's loaders."""
    return render(request, "reloadme/page.html", {})
