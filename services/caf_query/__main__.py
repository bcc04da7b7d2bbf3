"""`python -m services.caf_query`: run the read side (projector and API) until SIGTERM."""

from caf_runtime.service import main
from services.caf_query.app import create_app
from services.caf_query.config import QuerySettings

main("caf_query", QuerySettings, create_app)
