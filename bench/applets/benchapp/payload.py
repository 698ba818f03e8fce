"""What every benchmark endpoint answers: identical bytes in Hanji and the baselines."""

HELLO = b"Hello, world!\n"
