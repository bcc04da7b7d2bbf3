"""The development keys a few commands fall back on: `cafctl token`, `submit` and `practitioner
set` without `--key`, an employee read without CAFCTL_API_TOKEN.

They are the local stack's (`devstack.keys`): CAF_SIGNING_KEYS, else `.devstack/keys`. `devstack`
is imported only when such a command runs, never when cafctl starts: the service image ships
cafctl without devstack, and there these commands need `--key` or CAFCTL_API_TOKEN instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.keys import DevKeys

NO_DEVSTACK = (
    "cafctl: this command falls back on the local stack's development keys, and this "
    "installation has no local stack (devstack): give --key, or CAFCTL_API_TOKEN"
)


def dev_keys(folder: Path | None = None) -> DevKeys:
    """The development keys in `folder`, else in CAF_SIGNING_KEYS, else the local stack's."""
    try:
        from devstack.keys import DevKeys  # noqa: PLC0415 - see the module's docstring
    except ModuleNotFoundError as missing:
        if missing.name != "devstack":
            raise
        raise SystemExit(NO_DEVSTACK) from missing
    if folder is None and (configured := os.environ.get("CAF_SIGNING_KEYS")):
        folder = Path(configured)
    if folder is None:
        from devstack.stack import Stack  # noqa: PLC0415 - see the module's docstring

        folder = Stack().keys.root
    return DevKeys(folder)
