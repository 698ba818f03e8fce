import json

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ledger.models import Entry
from ledger.rows import write_row


@csrf_exempt  # a test endpoint, written to by a script
@require_POST
def write(request):
    return JsonResponse({"seq": write_row(request.GET["writer"])})


def count(request):
    per_writer = {}
    for writer, seq in Entry.objects.order_by("writer", "seq").values_list("writer", "seq"):
        per_writer.setdefault(writer, []).append(seq)
    return JsonResponse({"total": Entry.objects.count(), "per_writer": per_writer})


def db_info(request):
    info = {"vendor": connection.vendor}
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            info["journal_mode"] = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            info["busy_timeout_ms"] = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
        info["transaction_mode"] = connection.transaction_mode
    return HttpResponse(json.dumps(info), content_type="application/json")


