"""tabline: synthetic tables on an assembly line of agents."""
from tabline.errors import InvalidTableError, TablineError
from tabline.schema import Column, Schema

__version__ = "0.1.0"
__all__ = ["Column", "Schema", "TablineError", "InvalidTableError", "__version__"]
