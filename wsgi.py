"""The object gunicorn serves (gunicorn.conf.py: wsgi_app = "wsgi:app")."""
from app import create_app

app = create_app()
