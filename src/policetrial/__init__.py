"""policetrial: run a cluster randomised trial of police training from sketch to report."""

__version__ = "0.1.0"
__all__ = ["__version__"]
