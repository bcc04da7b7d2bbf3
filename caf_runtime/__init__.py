"""The small runtime every service shares: settings, broker and DynamoDB factories, logging,
health endpoint, topology and provisioning. No business rules live here."""
