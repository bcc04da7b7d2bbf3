"""`python -m services.monitor`: run the misuse monitor until SIGTERM."""

from caf_runtime.service import main
from services.monitor.app import create_app
from services.monitor.config import MonitorSettings

main("monitor", MonitorSettings, create_app)
