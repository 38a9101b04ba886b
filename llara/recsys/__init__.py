"""SASRec, GRU4Rec, Caser: training, candidate ranking, checkpoints, and retrieval; the
popularity and content baselines."""

from llara.recsys.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_FILES, EMBEDDINGS_FILE,
                                     RecommenderCheckpoint,
                                     save_checkpoint, RecommenderHeader, read_header,
                                     load_checkpoint, load_item_embeddings, checkpoint_digest)
from llara.recsys.content import DEFAULT_DECAY, ContentIndex, content_scores, item_tokens
from llara.recsys.models import SASRec, GRU4Rec, Caser, RECOMMENDERS, build_recommender
from llara.recsys.popularity import target_counts, popularity_scores, dataset_target_counts
from llara.recsys.ranking import (CandidateRanking, candidate_scores,
                                  rank_candidates,
                                  evaluate_ranking, write_predictions, write_full_predictions)
from llara.recsys.retrieval import (Retrieval, check_source, retrieve, answered_lists,
                                    answered_rows,
                                    TrainingLists,
                                    training_lists)
from llara.recsys.train import TrainResult, seed_everything, train_recommender

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FILES",
    "EMBEDDINGS_FILE",
    "RecommenderCheckpoint",
    "save_checkpoint",
    "RecommenderHeader",
    "read_header",
    "load_checkpoint",
    "load_item_embeddings",
    "checkpoint_digest",
    "SASRec",
    "GRU4Rec",
    "Caser",
    "RECOMMENDERS",
    "build_recommender",
    "DEFAULT_DECAY",
    "ContentIndex",
    "content_scores",
    "item_tokens",
    "target_counts",
    "popularity_scores",
    "dataset_target_counts",
    "CandidateRanking",
    "candidate_scores",
    "rank_candidates",
    "evaluate_ranking",
    "write_predictions",
    "write_full_predictions",
    "Retrieval",
    "check_source",
    "retrieve",
    "answered_lists",
    "answered_rows",
    "TrainingLists",
    "training_lists",
    "TrainResult",
    "seed_everything",
    "train_recommender",
]
