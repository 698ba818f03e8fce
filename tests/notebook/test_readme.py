"""The README's Jupyter example runs as written in a real kernel."""

from __future__ import annotations

import re

from support.paths import ROOT


def readme_jupyter_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it in Jupyter", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_jupyter_example(new_kernel):
    """The Python block of README's "Use it in Jupyter" section works cell by cell."""
    k = new_kernel()
    code = readme_jupyter_example()
    k.ok(code)
    assert k.value('hanji.get(("demo", "hits")).json()') == {"hello": "world"}
    assert k.value('hanji.get("/res/notebook/square", params={"n": "7"}).json()') == {"square": 49}
    shown = k.ok('hanji.show("demo")')
    html = "".join(shown.data("text/html"))
    assert "<iframe" in html and "applet=demo" in html
