"""Evaluation of a synthetic table: quality, detection, utility, privacy and validity, each beside a ceiling.

Example:
    >>> from tabline.eval import evaluate, Report
    >>> callable(evaluate), Report.__name__
    (True, 'Report')
"""
from tabline.eval.evaluation import evaluate
from tabline.eval.report import (
    Comparison, DetectionScores, PrivacyScores, QualityScores, Report, Utility, UtilityScores, ValidityScores,
)

__all__ = [
    "evaluate", "Report", "Comparison", "QualityScores", "DetectionScores", "Utility", "UtilityScores",
    "PrivacyScores", "ValidityScores",
]
