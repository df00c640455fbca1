from tests.integration.capture.conftest import demo, demo_definition, demo_version

__all__ = ["demo", "demo_definition", "demo_version"]
