"""The local development stack: real Apache Kafka (KRaft) and DynamoDB Local as processes.

Jars come from Maven Central (see `deploy/local/pom.xml`) and are cached; `python -m devstack`
starts, provisions and stops everything. Tests use the same code through `tests/conftest.py`.
"""
