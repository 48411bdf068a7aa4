"""Schema-driven fuzzing of the real server: every operation in /openapi.json gets generated requests
(valid and invalid bodies, parameters and uploads). None may answer with a server error, and every
status it answers must be one the document declares, in the shape the document gives."""

from __future__ import annotations

import time
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from conftest import audio_file, make_server

EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 30}
EXAMPLES_ON_A_REAL_SESSION = 25
MINIMUM_REQUESTS = 1000
TIME_BOUND_SECONDS = 600


def test_no_operation_fails_on_generated_input(tmp_path_factory):
    server = make_server(tmp_path_factory, "fuzz").start()
    try:
        with server.client() as client, open(audio_file("jfk.flac"), "rb") as audio:
            real_session = client.post("/transcribe", files={"audio": ("jfk.flac", audio)}).json()["session_id"]
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        statuses: Counter[tuple[str, int]] = Counter()
        failures: list[str] = []
        started = time.monotonic()
        # DELETE last, so the operations on the real session find it there.
        operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda o: o.method == "delete")
        for operation in operations:
            passes = [(mode, examples, None) for mode, examples in EXAMPLES.items()]
            if "{session_id}" in operation.path:
                passes.append((GenerationMode.POSITIVE, EXAMPLES_ON_A_REAL_SESSION, {"session_id": real_session}))
            for mode, examples, path_parameters in passes:

                @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
                @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
                def exercise(case):
                    assert time.monotonic() - started < TIME_BOUND_SECONDS, "the fuzz run is over its time bound"
                    response = case.call(timeout=60)
                    statuses[(operation.label, response.status_code)] += 1
                    try:
                        case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                                 response_schema_conformance])
                    except (Exception, BaseExceptionGroup) as failure:  # collect all, fail once listing them
                        failures.append(f"{operation.label} [{mode.value}]: {str(failure)[:600]}")

                try:
                    exercise()
                except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
                    assert mode == GenerationMode.NEGATIVE, operation.label
        total = sum(statuses.values())
        print(f"\nfuzz: {total} requests in {time.monotonic() - started:.0f} s")
        for (label, status), count in sorted(statuses.items()):
            print(f"  {label}: {status} x{count}")
        assert not failures, "\n".join(failures[:30])
        assert total >= MINIMUM_REQUESTS
        assert "Traceback" not in server.log()
    finally:
        server.stop()
