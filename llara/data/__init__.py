"""Raw logs -> canonical Parquet tables (items, train/val/test samples) and candidate lists."""
