"""`python -m services.intake`: run the intake service until SIGTERM."""

from caf_runtime.service import run
from services.intake.app import create_app
from services.intake.config import IntakeSettings

settings = IntakeSettings()
run("intake", lambda: create_app(settings), settings)
