"""Django from cells: ORM calls, models defined in cells, hanji.migrate (issue 3, item 7)."""

from __future__ import annotations

from pathlib import Path

from support.kernels import Kernel

INVENTORY_V1 = """
from django.db import models

class Item(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "inventory"
"""

INVENTORY_V2 = """
from django.db import models

class Item(models.Model):
    name = models.CharField(max_length=50)
    quantity = models.IntegerField(default=0)

    class Meta:
        app_label = "inventory"

class Shelf(models.Model):
    label = models.CharField(max_length=10)
    items = models.ManyToManyField(Item)

    class Meta:
        app_label = "inventory"
"""


def test_orm_in_a_synchronous_cell_works_without_setting_anything(kernel: Kernel) -> None:
    """ORM calls written directly in a synchronous cell work without the user setting anything."""
    result = kernel.ok("""
        import os
        from notes.models import Note
        note = Note.objects.create(title="from a cell")
        print(Note.objects.filter(title="from a cell").count(), os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"))
    """)
    assert result.stdout.strip() == "1 true"
    assert kernel.value("hanji.get('/res/notes/list').json()[0]['title']") == "from a cell"


def test_guard_is_only_lifted_during_synchronous_cells(kernel: Kernel) -> None:
    """Between cells and in cells with top-level await the guard stays; Django's async ORM works there."""
    result = kernel.ok("""
        import asyncio, os
        await asyncio.sleep(0)
        print(os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"), await Note.objects.filter(title="from a cell").acount())
    """)
    assert result.stdout.strip() == "None 1"
    result = kernel.run("await asyncio.sleep(0)\nNote.objects.count()")
    assert result.error["ename"] == "SynchronousOnlyOperation"


def test_models_defined_in_a_cell_get_tables_from_migrate(kernel: Kernel) -> None:
    """hanji.migrate(applet_id) creates the tables of models defined in a cell with that app label."""
    result = kernel.ok(INVENTORY_V1 + "hanji.migrate('inventory')")
    assert "hanji.migrate('inventory'):" in result.text and "Create model Item" in result.text
    kernel.ok("Item.objects.create(name='bolt'); Item.objects.create(name='nut')")
    assert kernel.value("sorted(Item.objects.values_list('name', flat=True))") == ["bolt", "nut"]
    assert "no change" in kernel.ok("hanji.migrate('inventory')").text


def test_rerun_with_changed_models_updates_the_tables(kernel: Kernel) -> None:
    """Re-running the models' cell with a new field and a new model, then %hanji migrate, updates the tables and keeps the rows."""
    kernel.ok(INVENTORY_V2)
    result = kernel.ok("%hanji migrate inventory")
    assert "Add field quantity to item" in result.text and "Create model Shelf" in result.text
    assert "RuntimeWarning" not in kernel.ok(INVENTORY_V2).stderr  # re-registration is expected here
    kernel.ok("""
        shelf = Shelf.objects.create(label="A1")
        shelf.items.add(*Item.objects.all())
        Item.objects.filter(name="bolt").update(quantity=12)
    """)
    assert kernel.value("[(i.name, i.quantity) for i in Shelf.objects.get(label='A1').items.order_by('name')]") == [
        ("bolt", 12), ("nut", 0)]


def test_live_applet_serves_cell_models_through_django_and_twisted(kernel: Kernel) -> None:
    """A live applet with Django views and a template using hanji.callback serves the cell's models."""
    kernel.ok("""
        from django.http import JsonResponse
        from django.urls import path
        from hanji.core.applet import Applet, WebUI
        from hanji.core.utils import TwAppletResource, defer_to_django

        def stock(request):
            return JsonResponse({i.name: i.quantity for i in Item.objects.all()})

        class Restock(TwAppletResource):
            path = "restock"
            def render_POST(self, request):
                name = request.args["name"][0]
                def add():
                    item = Item.objects.get(name=name)
                    item.quantity += 1
                    item.save()
                    return {"name": name, "quantity": item.quantity}
                return defer_to_django(add)

        class InventoryWeb(WebUI):
            twisted_dynamic_resources = [Restock]
            template = '<button onclick="hanji.callback(\\'{{ applet.id }}\\', \\'restock\\', {name: \\'nut\\'})">+1 nut</button>'

        hanji.activate(Applet(id="inventory"), web=InventoryWeb, urls=[path("", stock)])
    """)
    assert kernel.value("hanji.post(('inventory', 'restock'), data={'name': 'nut'}).json()") == {"name": "nut", "quantity": 1}
    assert kernel.value("hanji.get('/applets/inventory/').json()") == {"bolt": 12, "nut": 1}
    assert "hanji.callback('inventory', 'restock', {name: 'nut'})" in kernel.value("hanji.get('/').text")


def test_migrate_errors_are_one_line(kernel: Kernel) -> None:
    """hanji.migrate on a label without models says how to define one, in one line."""
    result = kernel.run("hanji.migrate('nothing_here')")
    assert result.error["ename"] == "UsageError"
    assert "class Meta: app_label = 'nothing_here'" in result.error["evalue"]


def test_migrate_everything_and_reset(kernel: Kernel) -> None:
    """hanji.migrate() covers the installed applets and the cell models; reset=True recreates a cell model's tables."""
    assert "applied the migrations of the installed applets" in kernel.ok("hanji.migrate()").text
    result = kernel.ok("hanji.migrate('inventory', reset=True)")
    assert "dropped table inventory_item in the SQLite database " in result.text and "Create model Item" in result.text
    assert "db.sqlite3 (shared by every kernel and server using this data dir)" in result.text
    assert kernel.value("Item.objects.count()") == 0


def test_a_cell_calls_the_drf_example_api(kernel: Kernel) -> None:
    """A notebook cell reads the tasks example's REST API (Django REST framework) with hanji.get."""
    assert kernel.value("hanji.get('/applets/tasks/api/tasks/').status") == 200
    assert kernel.value("type(hanji.get('/applets/tasks/api/tasks/').json()).__name__") == "list"
    assert "tasks" in kernel.value("hanji.get('/applets/tasks/api/').json()")  # DRF's API root


def test_a_project_urlconf_including_hanji_follows_activations(tmp_path: Path) -> None:
    """With HANJI_SETTINGS naming a project whose ROOT_URLCONF includes Hanji's URLs, an
    applet activated later in a kernel is reachable under the project's prefix, and gone
    once deactivated."""
    site = tmp_path / "mysite"
    site.mkdir()
    (site / "__init__.py").write_text("")
    (site / "settings.py").write_text("from hanji.django.settings import *  # noqa\nROOT_URLCONF = 'mysite.urls'\n")
    (site / "urls.py").write_text("from django.urls import include, path\n"
                                  "urlpatterns = [path('site/', include('hanji.django.urls'))]\n")
    kernel = Kernel(tmp_path, env={"HANJI_SETTINGS": "mysite.settings"}, applets=None)
    try:
        kernel.ok("%load_ext hanji\nimport hanji")
        kernel.ok("""
from django.http import HttpResponse
from django.urls import path
from hanji.core.applet import Applet

hanji.activate(Applet(id="later"), urls=[path("", lambda request: HttpResponse("here"))])
""")
        assert kernel.value("hanji.get('/site/applets/later/').text") == "here"
        kernel.ok("hanji.deactivate('later')")
        assert kernel.value("hanji.get('/site/applets/later/').status") == 404
    finally:
        kernel.shutdown()
