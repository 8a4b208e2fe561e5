"""The served application: `sanic app.main` finds `app` here."""

from app.factory import create_app

app = create_app()
