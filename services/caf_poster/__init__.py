"""The caf_poster service: owns the CAF (grants, groups, per-taxpayer versions, CAF numbers)."""
