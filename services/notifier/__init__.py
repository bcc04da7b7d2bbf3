"""The notifier service: owns sent marks."""
