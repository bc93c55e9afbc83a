"""Rules and parameters as data: the YAML catalogue and its strict loader."""

from regulations.catalogue import (
    CONSTANT_NAMES,
    Catalogue,
    CitedValue,
    RateYear,
    Regulation,
    load_catalogue,
)

__all__ = ["CONSTANT_NAMES", "Catalogue", "CitedValue", "RateYear", "Regulation", "load_catalogue"]
