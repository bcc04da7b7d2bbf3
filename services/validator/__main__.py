"""`python -m services.validator`: run the validator service until SIGTERM."""

from caf_runtime.service import main
from services.validator.app import create_app
from services.validator.config import ValidatorSettings

main("validator", ValidatorSettings, create_app)
