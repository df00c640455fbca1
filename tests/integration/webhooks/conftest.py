from tests.integration.identity.support import fast_passwords, loaded
from tests.integration.webhooks.receiver import receivers

__all__ = ["fast_passwords", "loaded", "receivers"]
