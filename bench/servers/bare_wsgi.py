"""Baseline: the same Django project behind a bare twisted.web.wsgi.WSGIResource.

    python bare_wsgi.py PORT [THREADS]

The WSGIResource is the Site's root, on its own thread pool of THREADS workers
(default 10, Hanji's default Django pool size). No Hanji server code runs here.
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")


def main() -> None:
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from twisted.internet import reactor
    from twisted.python.threadpool import ThreadPool
    from twisted.web import server
    from twisted.web.wsgi import WSGIResource

    port = int(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    pool = ThreadPool(minthreads=1, maxthreads=threads, name="wsgi")
    pool.start()
    reactor.addSystemEventTrigger("after", "shutdown", pool.stop)
    site = server.Site(WSGIResource(reactor, pool, WSGIHandler()))
    reactor.listenTCP(port, site, interface="127.0.0.1")
    print(f"bare wsgi serves http://127.0.0.1:{port}/", file=sys.stderr, flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
