"""The bundled sample crawl: a deterministic generator of WARC, WET, JSONL and Parquet files."""
