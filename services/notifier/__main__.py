"""`python -m services.notifier`: run the notifier service until SIGTERM."""

from caf_runtime.service import main
from services.notifier.app import create_app
from services.notifier.config import NotifierSettings

main("notifier", NotifierSettings, create_app)
