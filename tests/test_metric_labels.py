"""GET /metrics keeps a bounded label set whatever clients send: made-up methods and paths fold into one value each."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from evostim.server.ops.observability import method_label

_REQUEST_SERIES = re.compile(r"^evostim_http_requests_total\{(.*)\} ", re.MULTILINE)


def _label_sets(api: TestClient) -> set[str]:
    return set(_REQUEST_SERIES.findall(api.get("/metrics").text))


def test_made_up_methods_and_paths_add_a_handful_of_series_not_one_per_request(api: TestClient) -> None:
    before = _label_sets(api)
    for number in range(300):
        api.request(f"MADEUP{number}", "/healthz")
        api.request(f"ODD{number}", f"/no/such/path/{number}")
        api.get(f"/no/such/path/{number}")
    after = _label_sets(api)
    added = after - before  # the registry is the process's: earlier tests may have made some of these already
    assert len(added) <= 4, added  # at most: other on a route (405), other and GET unmatched (404), and so on
    assert not any("MADEUP" in labels or "ODD" in labels or "/no/such" in labels for labels in after)
    assert 'method="other",route="/healthz",status="405"' in after
    assert 'method="other",route="unmatched",status="404"' in after
    assert 'method="GET",route="unmatched",status="404"' in after


def test_standard_methods_keep_their_name_and_others_are_other() -> None:
    assert [method_label(m) for m in ("GET", "POST", "DELETE", "OPTIONS")] == ["GET", "POST", "DELETE", "OPTIONS"]
    assert [method_label(m) for m in ("get", "PROPFIND", "X" * 100)] == ["other", "other", "other"]
