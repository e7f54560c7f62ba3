"""The trial's web application (FastAPI, server-rendered, no JavaScript).

Takes `Settings` (a workspace, a secret key, the database) through `create_app`; gives the
dashboard, the sealed randomisation, the blinded audit screen, the officers' questionnaire
links and the statistician's downloads, behind accounts with roles (`accounts`, `security`,
`site`, one `routes_*` module per area).
"""

from policetrial.web.app import app_from_env, create_app
from policetrial.web.settings import Settings

__all__ = ["Settings", "app_from_env", "create_app"]
