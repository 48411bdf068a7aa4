"""The job queue and the jobs it runs. Never imports FastAPI."""
