"""orderfsm: Square's order, payment, refund and fulfillment rules, executable."""

from .errors import ErrorDetail, SquareError
from .rules import CATALOG, Confidence, Rule, Variants, get_rule

__all__ = ["CATALOG", "Confidence", "ErrorDetail", "Rule", "SquareError", "Variants", "get_rule"]
__version__ = "0.1.0"
