"""oncoqi.tcia HTTP layer, metadata cache and NBIA v4 listings against the local test server."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.tcia_server import COLLECTION, DOI, LICENSE_URI, NBIATestServer
from helpers.tcia_server import shared_catalog as catalog
from oncoqi import __version__
from oncoqi.errors import Cancelled, InputError
from oncoqi.tcia.cache import CacheError, MetadataCache, default_cache_path
from oncoqi.tcia.http import HttpClient, HTTPStatusError, NetworkError, RetryPolicy, parse_retry_after
from oncoqi.tcia.nbia import NBIAClient


def fast_http(timeout: float = 2.0, retries: int = 2) -> HttpClient:
    return HttpClient(timeout=timeout, retry=RetryPolicy(retries=retries, backoff=0.01, max_delay=2.0))


def client(srv: NBIATestServer, **kw) -> NBIAClient:
    kw.setdefault("http", fast_http())
    return NBIAClient(srv.url, **kw)


# --- listings shaped like NBIA v4 ------------------------------------------------------------------


def test_collections_with_descriptions_and_user_agent(server):
    cols = client(server).collections()
    assert [c.name for c in cols] == ["Empty-Collection", COLLECTION]
    phantom = cols[1]
    assert phantom.url == DOI and phantom.description_text == "Synthetic PET/CT phantoms for OncoQI tests."
    agents = {r.headers["User-Agent"] for r in server.state.requests}
    assert len(agents) == 1 and agents.pop().startswith(f"OncoQI/{__version__} (")
    assert not cols.from_cache and not cols.offline


def test_patients_studies_series_and_instances(server):
    c = client(server)
    patients = c.patients(COLLECTION)
    assert [(p.patient_id, p.sex, p.species) for p in patients] == [
        ("PHANTOM-001", "M", "Homo sapiens"),
        ("PHANTOM-002", "F", "Homo sapiens"),
    ]
    studies = c.studies(COLLECTION, "PHANTOM-002")
    assert len(studies) == 1 and studies[0].date == "2001-01-01" and studies[0].series_count == 2
    ct = catalog().find("CT", "PHANTOM-002")
    series = c.series(study_uid=studies[0].study_uid, modality="CT")
    assert [s.series_uid for s in series] == [ct.uid]
    s = series[0]
    assert (s.image_count, s.file_size) == (3, sum(len(d) for _, d, _ in ct.files))
    assert (s.license_uri, s.collection_uri, s.series_date, s.body_part) == (LICENSE_URI, DOI, "2001-01-01", "CHEST")
    assert server.requests_to("getSeries")[-1].params == {"StudyInstanceUID": s.study_uid, "Modality": "CT"}
    assert [i.sop_instance_uid for i in c.instances(ct.uid)] == [sop for _, _, sop in ct.files]


def test_empty_answer_is_an_empty_listing_and_series_needs_a_filter(server):
    c = client(server)
    assert len(c.patients("Empty-Collection")) == 0  # NBIA answers "no results" with an empty body
    with pytest.raises(InputError, match="give a collection"):
        c.series()


def test_references_of_an_rtstruct_come_from_its_first_instance(server):
    c = client(server)
    rt = c.series(modality="RTSTRUCT")[0]
    assert rt.is_segmentation
    assert c.referenced_series(rt) == [catalog().find("CT", "PHANTOM-001").uid]
    assert len(server.requests_to("getSingleImage")) == 1
    ct = c.series(modality="CT", patient_id="PHANTOM-001")[0]
    assert c.referenced_series(ct) == []


# --- retries, backoff, timeouts, clear 4xx -----------------------------------------------------------


def test_500_then_success_is_retried(server):
    server.add_fault("getCollectionValues", "status", status=500, times=2)
    assert len(client(server, http=fast_http(retries=2)).collections()) == 2
    assert len(server.requests_to("getCollectionValues")) == 3


def test_500_beyond_the_retries_gives_a_clear_error(server):
    server.add_fault("getPatient", "status", status=503, times=-1, body="maintenance")
    with pytest.raises(HTTPStatusError) as info:
        client(server, http=fast_http(retries=1)).patients(COLLECTION)
    text = str(info.value)
    assert "getPatient?Collection=OncoQI-Phantom" in text and "HTTP 503" in text and "maintenance" in text
    assert "gave up after 2 attempts" in text
    assert len(server.requests_to("getPatient")) == 2


def test_429_waits_for_retry_after(server):
    server.add_fault("getCollectionValues", "status", status=429, retry_after="1")
    start = time.monotonic()
    client(server).collections()
    assert time.monotonic() - start >= 0.95  # the backoff alone would be 0.01 s
    assert len(server.requests_to("getCollectionValues")) == 2


def test_4xx_is_not_retried_and_names_url_and_reason(server):
    c = NBIAClient(server.url.replace("/v4/", "/v9/"), http=fast_http())
    with pytest.raises(HTTPStatusError) as info:
        c.collections()
    text = str(info.value)
    assert info.value.status == 404 and "/v9/getCollectionValues" in text and "check the API URL" in text
    assert len(server.state.requests) == 1


def test_silent_server_hits_the_timeout_then_succeeds(server):
    server.add_fault("getCollectionValues", "silent", seconds=3)
    cols = client(server, http=fast_http(timeout=0.3, retries=1)).collections()
    assert len(cols) == 2 and len(server.requests_to("getCollectionValues")) == 2


def test_unreachable_server_is_a_network_error():
    srv = NBIATestServer(catalog()).start()
    url = srv.url
    srv.stop()
    with pytest.raises(NetworkError, match="cannot reach the server"):
        NBIAClient(url, http=fast_http(retries=0)).collections()


def test_dropped_json_answer_is_retried(server):
    server.add_fault("getSeries", "drop", after_bytes=100)
    series = client(server).series(collection=COLLECTION)
    assert len(series) == 4 and len(server.requests_to("getSeries")) == 2


def test_cancel_interrupts_the_backoff(server):
    server.add_fault("getCollectionValues", "status", status=503, times=-1)
    cancel = threading.Event()
    http = HttpClient(timeout=2, retry=RetryPolicy(retries=5, backoff=30))
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        http.get_json(server.url + "getCollectionValues", cancel)
    assert time.monotonic() - start < 5


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert RetryPolicy(backoff=1, max_delay=5).delay(3, None) == 5  # 8 s capped
    assert RetryPolicy(max_delay=5).delay(0, 3600) == 5  # a server cannot stall us for an hour


# --- metadata cache --------------------------------------------------------------------------------


def test_default_cache_path_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ONCOQI_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "explicit" / "tcia.sqlite"
    monkeypatch.delenv("ONCOQI_CACHE_DIR")
    assert default_cache_path() == tmp_path / "xdg" / "oncoqi" / "tcia.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "oncoqi" / "tcia.sqlite"


def test_cache_serves_fresh_answers_refreshes_on_demand_and_by_age(server, tmp_path):
    cache = MetadataCache(tmp_path / "c.sqlite")
    c = client(server, cache=cache)
    first = c.patients(COLLECTION)
    again = c.patients(COLLECTION)
    assert not first.from_cache and again.from_cache and again.items == first.items
    assert len(server.requests_to("getPatient")) == 1
    assert not c.patients(COLLECTION, refresh=True).from_cache
    assert len(server.requests_to("getPatient")) == 2
    stale = client(server, cache=cache, max_age=0)
    time.sleep(0.01)
    assert not stale.patients(COLLECTION).from_cache
    assert len(server.requests_to("getPatient")) == 3
    # keys include the source URL and the query: another collection is another entry
    assert len(c.patients("Empty-Collection")) == 0 and len(server.requests_to("getPatient")) == 4
    assert cache.clear() == 2 and cache.get(f"nbia {server.url}", "getPatient?Collection=OncoQI-Phantom") is None


def test_offline_browsing_uses_the_stale_cache_and_says_so(tmp_path):
    cache = MetadataCache(tmp_path / "c.sqlite")
    with NBIATestServer(catalog()) as srv:
        online = client(srv, cache=cache).collections()
        url = srv.url
    offline = NBIAClient(url, http=fast_http(retries=0), cache=cache).collections(refresh=True)
    assert offline.offline and offline.from_cache
    assert offline.items == online.items and offline.fetched_at == pytest.approx(online.fetched_at)
    with pytest.raises(NetworkError):  # nothing cached for this query
        NBIAClient(url, http=fast_http(retries=0), cache=cache).patients(COLLECTION)


def test_cache_is_shared_between_threads(tmp_path):
    cache = MetadataCache(tmp_path / "c.sqlite")
    errors = []

    def work(k: int) -> None:
        try:
            for j in range(20):
                cache.put("s", f"q{k}-{j}", {"k": k, "j": j})
                assert cache.get("s", f"q{k}-{j}").payload == {"k": k, "j": j}
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.clear("s") == 80


def test_the_test_server_negotiates_content_like_jax_rs(server):
    http = fast_http()
    with pytest.raises(HTTPStatusError, match="HTTP 406"):
        http.open(server.url + "getCollectionValues", accept="text/csv")
    with http.open(server.url + "getCollectionValues", accept="application/json") as response:
        assert response.read().startswith(b"[")


def test_a_damaged_cache_file_is_a_clear_error(tmp_path):
    path = tmp_path / "tcia.sqlite"
    path.write_bytes(b"this is not an SQLite database, just text long enough to have a header" * 20)
    with pytest.raises(CacheError, match=r"tcia\.sqlite: the TCIA metadata cache is unusable .* delete the file"):
        MetadataCache(path).get("nbia x", "getCollectionValues")
