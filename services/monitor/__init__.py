"""The CAF-number misuse monitor (rules MN-01 … MN-07)."""
