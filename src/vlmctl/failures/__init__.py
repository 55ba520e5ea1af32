"""The failure catalogue read by `vlmctl doctor explain` and by `vlmctl serve`'s supervisor.

    from vlmctl.failures import explain, BY_ID
    result = explain(log_text)          # matches, primary cause, plan change, context
"""
from vlmctl.failures.catalog import BY_ID, CATALOG, SUBSYSTEMS, Signature
from vlmctl.failures.match import Explanation, Match, explain, normalise_line

__all__ = ["BY_ID", "CATALOG", "SUBSYSTEMS", "Explanation", "Match", "Signature", "explain", "normalise_line"]
