"""The objects behind the curated public API (:mod:`custody`): private; import them from ``custody``."""
