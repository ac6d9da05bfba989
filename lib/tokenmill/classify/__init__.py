"""Model-based quality: train a classifier in Spark, score with Spark ML, fastText or transformers, select."""
