"""Support code shared by the tests and the bench scripts.

- :mod:`support.paths`: where the example and test applet directories are;
- :mod:`support.polling`: ``wait_until``, the one "wait for X or time out" loop;
- :mod:`support.net`: free ports and connection checks on 127.0.0.1;
- :mod:`support.http`: the one HTTP answer type, urllib requests and a raw-socket client;
- :mod:`support.server`: ``hanji serve`` in a subprocess, ready once it wrote its ``--ready-file``;
- :mod:`support.kernels`: real Jupyter kernels driven through jupyter_client;
- :mod:`support.postgres_cluster`: a throwaway PostgreSQL server.

The tests import it as ``support`` (pytest puts ``tests/`` on ``sys.path`` for
``tests/conftest.py``); a bench script inserts the ``tests/`` directory first.
"""
