"""Test support that tests and scripts import: patients generated from rule conditions (patients.py) and the
safety-invariant harness built on them (safety_harness.py). Nothing here runs at import time."""
