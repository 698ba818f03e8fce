"""What the resources answer: the tests rewrite VERSION."""

VERSION = "v1"
