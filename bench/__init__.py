"""loadpilot's benchmarks: `python -m bench [NAME ...]` writes bench/results/NAME.json and NAME.md."""
