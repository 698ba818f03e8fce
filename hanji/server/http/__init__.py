"""HTTP on the reactor thread: the site, routing, the render contract, limits, static files."""
