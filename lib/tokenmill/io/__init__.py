"""Readers and writers: WARC/WET, JSONL, Parquet and Hugging Face datasets on any fsspec path."""
