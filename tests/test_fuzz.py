"""Schema-driven fuzzing of the real server: every operation in /openapi.json gets generated requests
(valid and invalid bodies, parameters and uploads). None may answer with a server error, and every
status it answers must be one the document declares, in the shape the document gives."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from conftest import audio_file, make_server, publish_numba_cache, seed_numba_cache

# Examples per operation: 15 valid and 15 invalid in `make test` (over 500 requests), twice as many with
# TAPESCRIBE_TEST_THOROUGH=1 (over 1000; CONTRIBUTING.md). Hypothesis is derandomized: the same cases each run.
SCALE = 2 if os.environ.get("TAPESCRIBE_TEST_THOROUGH") == "1" else 1
EXAMPLES = {GenerationMode.POSITIVE: 15 * SCALE, GenerationMode.NEGATIVE: 15 * SCALE}
EXAMPLES_ON_A_REAL_SESSION = 12 * SCALE
MINIMUM_REQUESTS = 500 * SCALE
TIME_BOUND_SECONDS = 600
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@dataclass
class FuzzRun:
    """What the run sent and what failed; failures are collected so one run lists them all."""

    started: float = field(default_factory=time.monotonic)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def exercise(self, operation, mode: GenerationMode, examples: int, path_parameters: dict | None) -> None:
        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def one_case(case) -> None:
            assert time.monotonic() - self.started < TIME_BOUND_SECONDS, "the fuzz run is over its time bound"
            response = case.call(timeout=60)
            self.statuses[(operation.label, response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as failure:
                self.failures.append(f"{operation.label} [{mode.value}]: {str(failure)[:600]}")

        try:
            one_case()
        except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
            assert mode == GenerationMode.NEGATIVE, operation.label


def test_no_operation_fails_on_generated_input(tmp_path_factory):
    server = make_server(tmp_path_factory, "fuzz")
    # Generated requests label the real session's speakers, a speakers job: numba's code for it, if a
    # server of this run compiled it already (else this one compiles it, about 30 CPU-seconds).
    seed_numba_cache(server)
    server.start()
    try:
        with server.client() as client, open(audio_file("jfk.flac"), "rb") as audio:
            real_session = client.post("/transcribe", files={"audio": ("jfk.flac", audio)}).json()["session_id"]
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        run = FuzzRun()
        # DELETE last, so the operations on the real session find it there.
        operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda o: o.method == "delete")
        for operation in operations:
            for mode, examples in EXAMPLES.items():
                run.exercise(operation, mode, examples, None)
            if "{session_id}" in operation.path:
                run.exercise(
                    operation, GenerationMode.POSITIVE, EXAMPLES_ON_A_REAL_SESSION, {"session_id": real_session}
                )
        total = sum(run.statuses.values())
        print(f"\nfuzz: {total} requests in {time.monotonic() - run.started:.0f} s")
        for (label, status), count in sorted(run.statuses.items()):
            print(f"  {label}: {status} x{count}")
        assert not run.failures, "\n".join(run.failures[:30])
        assert total >= MINIMUM_REQUESTS
        assert "Traceback" not in server.log()
    finally:
        server.stop()
        publish_numba_cache(server)
