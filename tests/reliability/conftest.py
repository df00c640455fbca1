from tests.integration.identity.support import fast_passwords, loaded

__all__ = ["fast_passwords", "loaded"]
