"""The Java harness fixture for the interop tests."""

from tests.interop.java import java

__all__ = ["java"]
