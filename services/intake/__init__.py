"""The intake service: owns dedup marks and pending TPA requests."""
