"""Clinical trial operations (CTMS): key risk indicators now; sites, milestones and monitoring visits later."""
