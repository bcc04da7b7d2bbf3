"""The validator service: owns the practitioner registry view and velocity counters."""
