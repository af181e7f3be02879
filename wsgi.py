"""The object gunicorn serves (gunicorn.conf.py: wsgi_app = "wsgi:app").

gunicorn builds it in its master before any worker (preload_app), so a configuration that cannot
run stops gunicorn here with one line instead of every worker failing to boot in turn.
"""
import sys

from app import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"Error: {exc}")
