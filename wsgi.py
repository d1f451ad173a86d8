"""The WSGI entry point: `app` for any WSGI server and for `flask --app wsgi ...` commands."""

from api import create_app

app = create_app()
