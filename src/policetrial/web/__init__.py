"""The trial's web application (FastAPI, server-rendered): see `policetrial.web.app`."""

from policetrial.web.app import app_from_env, create_app
from policetrial.web.settings import Settings

__all__ = ["Settings", "app_from_env", "create_app"]
