"""The Django side: settings, URLconf, views, middleware, the WSGI bridge and its pool,
and start-up. Views, middleware and templates run in the Django pool (``HanjiDjango-N``);
:mod:`hanji.django.setup` blocks and runs before the server starts, never on the reactor.
"""
