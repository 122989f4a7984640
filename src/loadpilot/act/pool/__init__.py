"""The process pool: supervisor, service control and the pool's files in the state dir."""
