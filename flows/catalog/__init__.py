"""The one place flows are registered: add a module here and its endpoint exists."""
from flows.catalog import member_check

CATALOG = [member_check.flow]
