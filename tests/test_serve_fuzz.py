"""Fuzzing the server's request parsing: whatever the body, the answer is 200 or a 400/413 in OpenAI's error shape.

Bounded: a fixed number of examples with a time limit each, so the suite stays fast (well under 20 s).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'qadapter[serve]'")
hypothesis = pytest.importorskip("hypothesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_serve import DIM, FakeEncoder, make_adapter  # noqa: E402

from qadapter.serve import EmbeddingRequest, create_app  # noqa: E402

#: any text, and text rich in what breaks encoders: lone surrogates (Cs), control characters, spaces
texts = st.text(max_size=30) | st.text(st.characters(categories=["Cs", "Cc", "Zs", "Ll"]), max_size=10)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_values = {
    "input": texts | st.lists(texts, max_size=6) | json_values,
    "model": st.text(max_size=10) | json_values,
    "encoding_format": st.sampled_from(["float", "base64", "int8", ""]) | json_values,
    "input_type": st.sampled_from(["query", "document", "search_query", "passage"]) | json_values,
    "dimensions": st.sampled_from([DIM, 3]) | json_values,
    "user": st.text(max_size=10) | json_values,
}
requests = st.fixed_dictionaries(
    {"input": field_values["input"]},
    optional={name: strategy for name, strategy in field_values.items() if name != "input"},
)
bodies = (
    requests.map(
        lambda body: json.dumps(body).encode()
    )  # ASCII JSON: lone surrogates arrive as \ud800 escapes
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=200)
)


def expected_count(body: bytes) -> int:
    data = json.loads(body)
    return 1 if isinstance(data["input"], str) else len(data["input"])


def test_any_body_gets_vectors_or_a_400_or_413_in_the_error_shape() -> None:
    app = create_app(make_adapter(), FakeEncoder(), warmup=False, max_inputs=5, max_chars=30)
    assert set(EmbeddingRequest.model_fields) == set(field_values)  # the fuzzer covers every field
    with TestClient(app, raise_server_exceptions=False) as client:

        @settings(
            max_examples=150,
            deadline=2000,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(bodies)
        def check(body: bytes) -> None:
            response = client.post(
                "/v1/embeddings", content=body, headers={"content-type": "application/json"}
            )
            payload = response.json()  # always JSON
            if response.status_code == 200:
                assert len(payload["data"]) == expected_count(body)
                assert all(len(item["embedding"]) in (DIM, 44) for item in payload["data"])  # float or base64
            else:
                assert response.status_code in (400, 413), (response.status_code, body[:200])
                error = payload["error"]
                assert error["type"] == "invalid_request_error" and error["message"] and error["code"]

        check()
