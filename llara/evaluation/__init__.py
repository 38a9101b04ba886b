"""Ranking metrics, packed candidate scoring, generation, prediction tables, reports."""

from llara.evaluation.generation import (parse_answer, left_aligned, generate_answers,
                                         generation_metrics)
from llara.evaluation.metrics import (ranking_metrics, FULL_KS, FULL_NDCG_KS, full_metrics,
                                      recall_at, full_protocol_metrics, reranked_ranks)
from llara.evaluation.packed import PackedBatch, pack_candidates
from llara.evaluation.predictions import predictions_table, metrics_from_predictions
from llara.evaluation.report import read_metrics_log, reference_results, write_report
from llara.evaluation.scoring import LLMRanking, score_candidates, scoring_metrics

__all__ = [
    "parse_answer",
    "left_aligned",
    "generate_answers",
    "generation_metrics",
    "ranking_metrics",
    "FULL_KS",
    "FULL_NDCG_KS",
    "full_metrics",
    "recall_at",
    "full_protocol_metrics",
    "reranked_ranks",
    "PackedBatch",
    "pack_candidates",
    "predictions_table",
    "metrics_from_predictions",
    "read_metrics_log",
    "reference_results",
    "write_report",
    "LLMRanking",
    "score_candidates",
    "scoring_metrics",
]
