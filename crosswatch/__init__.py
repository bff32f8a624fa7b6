"""crosswatch: post photos from watched folders to Instagram and X, exactly once."""

__version__ = "0.1.0"
