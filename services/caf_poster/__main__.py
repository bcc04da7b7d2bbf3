"""`python -m services.caf_poster`: run the caf_poster service until SIGTERM."""

from caf_runtime.service import run
from services.caf_poster.app import create_app
from services.caf_poster.config import CafPosterSettings

settings = CafPosterSettings()
run("caf_poster", lambda: create_app(settings), settings)
