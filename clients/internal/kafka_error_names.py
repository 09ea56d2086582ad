"""Kafka protocol error codes and their names, shared by the Python drivers.

The table is clients/internal/kafka-error-names.json (also read by the KafkaJS driver)."""

import json
import os

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "kafka-error-names.json")) as f:
    NAMES = {int(code): name for code, name in json.load(f).items()}


def name_of(code):
    """The protocol name of a Kafka error code, or UNKNOWN_SERVER_ERROR for codes we do not know."""
    return NAMES.get(code, "UNKNOWN_SERVER_ERROR")
