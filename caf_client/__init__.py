"""Publisher SDK for the portals and consumers of the CAF authorization processor.

- `Signer` signs a record value with a publisher key (detached JWS, the `caf-signature` header).
- `CafPublisher` builds contract messages from the `schemas` models, signs them, keys them as the
  contract says and publishes them to `caf.inbound.v1`, `caf.practitioners.v1`,
  `caf.entities.v1` or `caf.protected.v1`.
- `seal_pin` seals a Designated Official's typed PIN to intake's PIN key (Business Tax Account).
- `EventStream` reads `caf.events.v1` as typed events.
- `mint_identity_assertion` issues the identity assertion of a taxpayer's act, for an identity
  provider (the development one of the local stack, and tests).
- `KafkaConnection` reads a Kafka client properties file
  (`.devstack/clients/<principal>.properties`).
"""

from caf_client.connection import KafkaConnection
from caf_client.events import EventStream
from caf_client.identity import ASSURANCE_IAL2_AAL2, mint_identity_assertion
from caf_client.pins import seal_pin
from caf_client.publisher import CafPublisher, SignedRecord, signed_record
from caf_client.signing import ALGORITHMS, SIGNATURE_HEADER, Signer, load_private_key

__all__ = [
    "ALGORITHMS",
    "ASSURANCE_IAL2_AAL2",
    "SIGNATURE_HEADER",
    "CafPublisher",
    "EventStream",
    "KafkaConnection",
    "SignedRecord",
    "Signer",
    "load_private_key",
    "mint_identity_assertion",
    "seal_pin",
    "signed_record",
]
