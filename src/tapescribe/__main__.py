from tapescribe.cli import run

run()
