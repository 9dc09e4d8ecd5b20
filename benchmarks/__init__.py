"""Performance benchmarks of the course's training pipeline (run with `make bench` / `make bench-full`)."""
