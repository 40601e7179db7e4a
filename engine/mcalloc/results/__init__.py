"""Results folders: atomic writing, manifest and provenance."""

import lazy_loader

# the names, listed with their modules in __init__.pyi, are imported on first use
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
