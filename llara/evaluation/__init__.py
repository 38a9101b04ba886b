"""Ranking metrics, packed candidate scoring, generation, prediction tables, reports."""

from llara.evaluation.cold import MIN_COLD_ROWS, cold_table_rows, cold_target_rows
from llara.evaluation.diagnostics import derangement, with_histories_of, history_sensitivity
from llara.evaluation.fusion import (log_softmax_rows, fused_scores, ranks_of, fusion_grid,
                                     choose_weight, choose_fusion, served_weight, fusion_label,
                                     RECOMMENDER_RANKING)
from llara.evaluation.generation import (parse_answer, left_aligned, generate_answers,
                                         generation_metrics)
from llara.evaluation.metrics import (ranking_metrics, FULL_KS, FULL_NDCG_KS, full_metrics,
                                      recall_at, full_protocol_metrics, reranked_ranks)
from llara.evaluation.packed import PackedBatch, pack_candidates
from llara.evaluation.intervals import (interval_text, per_row, user_groups, paired_interval,
                                        compare, popularity_slices, history_slices,
                                        comparison_report)
from llara.evaluation.predictions import (predictions_table, metrics_from_predictions,
                                          fusion_table, comparison_from_predictions,
                                          cold_only_path)
from llara.evaluation.report import read_metrics_log, write_report
from llara.evaluation.scoring import (LLMRanking, ranking_of, packed_scoring_exact,
                                      score_candidates, scoring_metrics)

__all__ = [
    "MIN_COLD_ROWS",
    "cold_table_rows",
    "cold_target_rows",
    "derangement",
    "with_histories_of",
    "history_sensitivity",
    "log_softmax_rows",
    "fused_scores",
    "ranks_of",
    "fusion_grid",
    "choose_weight",
    "choose_fusion",
    "served_weight",
    "fusion_label",
    "RECOMMENDER_RANKING",
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
    "interval_text",
    "per_row",
    "user_groups",
    "paired_interval",
    "compare",
    "popularity_slices",
    "history_slices",
    "comparison_report",
    "predictions_table",
    "cold_only_path",
    "comparison_from_predictions",
    "metrics_from_predictions",
    "fusion_table",
    "read_metrics_log",
    "write_report",
    "LLMRanking",
    "ranking_of",
    "packed_scoring_exact",
    "score_candidates",
    "scoring_metrics",
]
