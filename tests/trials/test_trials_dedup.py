"""Cross-registry links between ICTRP records and the real CT.gov fixture records."""

from __future__ import annotations

import pytest
from test_trials_io_helpers import ictrp_record, sample_ictrp, v2_files, write_ictrp_xml, xml_files

from neuromodmap.trials import TrialStore, link_registries
from neuromodmap.trials.dedup import normalise_id


@pytest.fixture(scope="module")
def store(tmp_path_factory, trials_dir):
    tmp_path = tmp_path_factory.mktemp("dedup")
    extra = ictrp_record(
        TrialID="EUCTR2015-001894-41-GB", Source_Register="EU Clinical Trials Register",
        Public_title="A study to test certolizumab pegol in axial spondyloarthritis (UK)",
    )
    ictrp = write_ictrp_xml(tmp_path / "ictrp.xml", [*sample_ictrp(), extra])
    s = TrialStore(tmp_path / "t.duckdb")
    s.import_files([*v2_files(trials_dir), *xml_files(trials_dir), ictrp], progress=False)
    yield s
    s.close()


def test_links_by_trial_id_secondary_id_and_fuzzy_title(store):
    links = link_registries(store)
    got = {(r.registry_id, r.linked_id, r.method): (r.score, r.confirmed) for r in links.itertuples()}
    # ISRCTN record lists NCT02654730 in Secondary_ID (a real legacy XML trial)
    assert got[("ISRCTN12345678", "NCT02654730", "secondary_id")] == (100.0, True)
    # the real CT.gov record NCT02552212 lists EudraCT 2015-001894-41 in secondaryIdInfos
    assert got[("EUCTR2015-001894-41-DE", "NCT02552212", "secondary_id")] == (100.0, True)
    assert got[("EUCTR2015-001894-41-GB", "NCT02552212", "secondary_id")] == (100.0, True)
    # the same EU trial registered for two member states
    assert ("EUCTR2015-001894-41-DE", "EUCTR2015-001894-41-GB", "trial_id") in got or (
        "EUCTR2015-001894-41-GB", "EUCTR2015-001894-41-DE", "trial_id"
    ) in got
    # ChiCTR title ~ real NCT04207047 title, no shared id: a flagged candidate only
    score, confirmed = got[("ChiCTR2000012345", "NCT04207047", "fuzzy_title")]
    assert confirmed is False and score >= 90
    # the unrelated ANZCTR record links to nothing
    assert not any("ACTRN12618000123456" in key[:2] for key in got)
    # nothing links an ICTRP record to a CT.gov record by title when an id already does
    assert not any(k[2] == "fuzzy_title" and k[0].startswith(("EUCTR", "ISRCTN")) for k in got)
    stored = store.links_df()
    assert len(stored) == len(links) and set(stored["method"]) == {"trial_id", "secondary_id", "fuzzy_title"}


def test_deduplicated_view_drops_confirmed_copies_only(store):
    link_registries(store)
    everything = set(store.trials_df()["registry_id"])
    kept = set(store.trials_df(deduplicate=True)["registry_id"])
    assert {"ISRCTN12345678", "EUCTR2015-001894-41-DE", "EUCTR2015-001894-41-GB"} <= everything - kept
    assert "ChiCTR2000012345" in kept  # fuzzy candidates are never merged away
    assert {"NCT02552212", "NCT02654730", "NCT04207047", "ACTRN12618000123456"} <= kept


def test_links_are_rewritten_not_accumulated(store):
    first = link_registries(store)
    second = link_registries(store)
    assert len(store.links_df()) == len(first) == len(second)
    # the ChiCTR title differs from NCT04207047's only in case: a perfect score, still unconfirmed
    strict = link_registries(store, fuzzy_threshold=100)
    assert strict.loc[strict["method"] == "fuzzy_title", "confirmed"].tolist() == [False]
    assert "fuzzy_title" not in set(link_registries(store, fuzzy=False)["method"])


def test_ictrp_copy_of_nct_trial_is_one_row(store):
    # ICTRP's re-export of NCT02552212 (TrialID = NCT id) did not add or replace a row
    df = store.trials_df().set_index("registry_id")
    assert df.loc["NCT02552212", "source_format"] == "ctgov_v2"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("NCT01234567", "NCT01234567"), ("nct 01234567", "NCT01234567"), ("EUCTR2015-001894-41-DE", "EUDRACT2015-001894-41"),
     ("2015-001894-41", "EUDRACT2015-001894-41"), (" ISRCTN 12345678 ", "ISRCTN12345678")],
)
def test_normalise_id(raw, expected):
    assert normalise_id(raw) == expected
