"""Message contracts of the CAF authorization processor: models, value formats and topic names.

Only contracts live here; business rules belong to the services.
"""

__all__: list[str] = []  # nothing here: import the modules (schemas.inbound, schemas.events, ...)
