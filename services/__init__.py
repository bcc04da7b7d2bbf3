"""The four consumer services; none imports another."""
