"""`python -m services.caf_poster`: run the caf_poster service until SIGTERM."""

from caf_runtime.service import main
from services.caf_poster.app import create_app
from services.caf_poster.config import CafPosterSettings

main("caf_poster", CafPosterSettings, create_app)
