import pytest

from neuromodmap import vocabulary as v


def test_every_modality_named_in_issue_is_present():
    expected = {"tms", "tdcs", "tacs", "trns", "ces", "dbs", "mcs", "scs", "drg", "pns", "vns",
                "tvns", "tens", "ect", "mst", "fus", "sacral", "tibial", "other_neuromod"}
    assert set(v.MODALITIES) == expected


def test_groups_follow_seed_004():
    # seed 004 counts SCS and DRG together as spinal cord stimulation
    assert v.group_of("scs") == v.group_of("drg") == "spinal_cord"
    assert {v.group_of(c) for c in ("tms", "tdcs", "tacs", "trns")} == {"noninvasive_cortical"}
    assert v.group_of("dbs") == "deep_brain"
    for code, m in v.MODALITIES.items():
        assert m.group in v.MODALITY_GROUPS, code


@pytest.mark.parametrize("text,code", [
    ("rTMS", "tms"), ("iTBS", "tms"), ("deep TMS", "tms"), ("tDCS", "tdcs"),
    ("spinal cord stimulation", "scs"), ("BurstDR", "scs"), ("DRG stimulation", "drg"),
    ("tVNS", "tvns"), ("taVNS", "tvns"), ("vagus nerve stimulation", "vns"),
    ("electroconvulsive therapy", "ect"), ("MRgFUS", "fus"), ("occipital nerve stimulation", "pns"),
    ("Deep brain stimulation", "dbs"), ("PTNS", "tibial"), ("InterStim", "sacral"),
])
def test_normalise_modality(text, code):
    assert v.normalise_modality(text) == code


def test_normalise_unknown_returns_none():
    assert v.normalise_modality("aspirin") is None
    assert v.normalise_modality("") is None


@pytest.mark.parametrize("text,code", [
    ("left DLPFC", "dlpfc_left"), ("PAG/PVG", "pag_pvg"), ("Cg25", "scc"), ("sgACC", "scc"),
    ("VPL", "thalamus_sensory"), ("motor cortex", "m1"), ("nucleus accumbens", "nacc"),
])
def test_normalise_target(text, code):
    assert v.normalise_target(text) == code


def test_invasiveness():
    assert v.is_invasive(["scs"]) and v.is_invasive(["tms", "dbs"])
    assert not v.is_invasive(["tms", "tdcs", "tvns", "tens"])


def test_unknown_code_error_lists_valid_codes():
    with pytest.raises(KeyError, match="valid codes"):
        v.modality("laser")


def test_subtypes_cover_issue_list():
    assert {"neuropathic", "fbss", "crps", "fibromyalgia", "migraine", "cluster_headache", "low_back",
            "phantom", "post_stroke", "cancer", "acute"} == set(v.PAIN_SUBTYPES)
    assert {"mdd", "trd", "bipolar", "perinatal", "post_stroke_depression"} == set(v.DEPRESSION_SUBTYPES)


def test_atomic_write_leaves_no_partial_file_and_normal_permissions(tmp_path):
    import os

    from neuromodmap._utils import atomic_write

    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("partial")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_write(target) as fh:
        fh.write("ok")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "ok"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
