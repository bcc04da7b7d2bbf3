"""`python -m services.notifier`: run the notifier service until SIGTERM."""

from caf_runtime.service import run
from services.notifier.app import create_app
from services.notifier.config import NotifierSettings

settings = NotifierSettings()
run("notifier", lambda: create_app(settings), settings)
