"""Hanji inside a Jupyter kernel: the ``%load_ext hanji`` extension and its helpers.

Every module here runs on the notebook's cell thread unless its docstring says
otherwise; they reach the reactor (``HanjiReactor``) only through crochet.

    extension  %load_ext / %unload_ext: start and stop, banner
    session    the kernel's reactor thread and server; cell-thread to reactor calls
    hooks      cell events: new applet errors after each cell, ORM in cells
    magics     the %hanji line magic
    api        the functions re-exported by ``hanji`` (activate, get, show, ...)
    live       applets and endpoints defined in cells
    schema     tables for models defined in cells (hanji.migrate)
    client     HTTP calls to the site from cells (get/aget, ...)
    display    links, iframes and the public base URL
    reports    rich notebook views of status, routes and errors
"""
