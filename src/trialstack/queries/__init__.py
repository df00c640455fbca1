"""Data clarifications ("queries"): opened by edit checks or by monitors, answered by sites, closed by data managers."""
