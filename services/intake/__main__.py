"""`python -m services.intake`: run the intake service until SIGTERM."""

from caf_runtime.service import main
from services.intake.app import create_app
from services.intake.config import IntakeSettings

main("intake", IntakeSettings, create_app)
