"""The stored raw JSON (``neuromodmap._utils.json_text``, orjson) says exactly what
``json.dumps`` says, compactly, for real registry records, and still writes what orjson refuses."""

from __future__ import annotations

import datetime as dt
import json

from neuromodmap._utils import json_text
from neuromodmap.trials import read_trials


def _reference(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))


def test_real_records_are_written_as_json_dumps_writes_them(trials_dir):
    # every raw form the readers build: legacy XML (dicts of text), ICTRP XML and CSV rows
    files = [trials_dir / "ctgov_legacy_xml" / "NCT02586688.xml",
             trials_dir / "who_ictrp_xml_2024_machado" / "ICTRP-Results(1).xml",
             trials_dir / "who_ictrp_fullexport_samples_2020_worcjamessmith" / "ictrp_im_sample.csv"]
    n = 0
    for path in files:
        for rec in read_trials(path, problems=[]):
            assert json_text(rec.raw) == _reference(rec.raw), rec.trial.registry_id
            assert json.loads(json_text(rec.raw)) == json.loads(json.dumps(rec.raw, default=str))
            n += 1
    assert n > 100


def test_what_orjson_refuses_is_still_written():
    lone = {"title": "caf\udce9"}  # a lone surrogate: a byte no codec could decode, kept as such
    assert json_text(lone) == _reference(lone)
    keys = {1: "a", (2): "b"}  # non-string keys, as json.dumps writes them
    assert json_text(keys) == '{"1":"a","2":"b"}'
    big = {"n": 2 ** 70}
    assert json_text(big) == '{"n":1180591620717411303424}'
    when = {"d": dt.date(2020, 3, 1), "t": dt.datetime(2020, 3, 1, 12, 30)}
    assert json_text(when) == _reference(when) == '{"d":"2020-03-01","t":"2020-03-01 12:30:00"}'
