"""The package version, in one place: pyproject.toml reads it from here (hatch), the package and reports import it."""

__version__ = "0.1.0"
