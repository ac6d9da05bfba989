"""Token counting: a real Hugging Face tokenizer in Arrow batches, or a calibrated bytes-per-token estimate."""
