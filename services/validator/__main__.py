"""`python -m services.validator`: run the validator service until SIGTERM."""

from caf_runtime.service import run
from services.validator.app import create_app
from services.validator.config import ValidatorSettings

settings = ValidatorSettings()
run("validator", lambda: create_app(settings), settings)
