"""Benchmarks: scripts, not tests. Every figure is printed next to a bound measured in the same run.

The machine is small (2 cores) and shared, so an absolute requests/s means little from one run to
the next; a ratio against something measured seconds earlier on the same cores does.
"""
