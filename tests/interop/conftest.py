"""The fixtures of the interop tests: the Java harness and a schema registry."""

from tests.interop.java import java, registry_url

__all__ = ["java", "registry_url"]
