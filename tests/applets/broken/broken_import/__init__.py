"""An applet whose import fails: the others must still start."""

raise ImportError("broken_import is broken on purpose")
