"""tokenmill: Spark jobs that turn raw crawls and corpora into curated, token-budgeted Parquet mixtures."""

__version__ = "0.1.0"
