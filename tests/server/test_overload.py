"""Overload of the Django pool against a real server: a bounded queue answers 503 with
Retry-After at once, while the reactor's routes stay responsive.

The view ``/applets/limitstest/gate`` (tests/applets/limits/limitstest) blocks its
worker until the test creates the file ``open`` in $LIMITSTEST_GATE, and writes a line
to ``entered`` each time Django runs it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from support.http import Answer
from support.paths import APPLETS, LIMITS_APPLETS
from support.polling import wait_until
from websockets.sync.client import connect as ws_connect

WAIT = 30.0  # seconds: a hang guard, never a timed assertion


def test_full_django_queue_answers_503_while_the_reactor_serves(start_server: Any, tmp_path: Path) -> None:
    """With 2 Django workers and a queue of 2, the requests past the 4th get 503 with
    Retry-After and a reason at once, without Django running them; /res, a static file
    and a websocket answer meanwhile; defer_to_django fails with 503 too; and once the
    pool drains Django answers again."""
    gate = tmp_path / "gate"
    gate.mkdir()
    server = start_server([APPLETS, LIMITS_APPLETS], ["--django-threads", "2", "--django-queue", "2"],
                          env={"LIMITSTEST_GATE": str(gate)})
    answers: list[Answer] = []
    lock = threading.Lock()

    def call() -> None:
        answer = server.get("/applets/limitstest/gate", timeout=90)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call, daemon=True) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        # 2 run and 2 wait: the other 4 are refused without waiting for the gate.
        wait_until(lambda: len(answers) >= 4, WAIT, "four 503 answers")
        with lock:
            refused = list(answers)
        assert [a.status for a in refused] == [503] * 4, [(a.status, a.text) for a in refused]
        for answer in refused:
            assert int(answer.headers["Retry-After"]) > 0
            assert "Django pool is full" in answer.text and "--django-queue" in answer.text
            assert "/applets/limitstest/gate" in answer.text
        assert (gate / "entered").read_text().count("entered") <= 4

        # Another Django request is refused the same way; the reactor's routes answer.
        assert server.get("/applets/limitstest/fast").status == 503
        assert server.get("/res/echo/info").status == 200
        assert "Hello World" in server.get("/static/hello_world/help.html").text
        url = "ws" + server.url[len("http"):] + "/ws/echo/echo"
        with ws_connect(url, open_timeout=WAIT, close_timeout=WAIT, compression=None) as ws:
            ws.send("during overload")
            assert ws.recv(timeout=WAIT) == "during overload"
        deferred = server.get("/res/limitstest/defer")
        assert deferred.status == 503, deferred.text
        assert int(deferred.headers["Retry-After"]) > 0
        assert "limitstest" in deferred.text and "Django pool is full" in deferred.text
        assert len(answers) == 4  # the admitted ones still wait at the gate
    finally:
        (gate / "open").touch()
        for thread in threads:
            thread.join(WAIT)

    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * 4 + [503] * 4
    assert [a.text for a in answers if a.status == 200] == ["gate passed"] * 4
    assert (gate / "entered").read_text().count("entered") == 4  # Django never saw the others
    wait_until(lambda: server.get("/applets/limitstest/fast").status == 200, WAIT, "Django answering again")
    assert server.get("/res/limitstest/defer").text == "ran in the Django pool"
