"""`python -m tabline.cli ...`: the same as the `tabline` command."""
import sys

from tabline.cli import app

sys.exit(app())
