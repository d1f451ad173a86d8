"""Tests of the event store: one recorder contract, run against every backend."""
