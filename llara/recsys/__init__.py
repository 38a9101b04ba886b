"""ID-based sequential recommenders (SASRec, GRU4Rec, Caser) that supply LLaRA's item embeddings."""
