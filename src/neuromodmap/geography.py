"""Country names as registries write them → ISO 3166 alpha-2 codes and continents."""

from __future__ import annotations

from functools import cache

import pycountry

__all__ = ["country_code", "continent"]

# ISO alpha-2 codes by continent (UN geoscheme, with the Middle East in Asia and Russia in Europe).
_CONTINENTS = {
    "Africa": "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG "
              "ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
    "Asia": "AE AF AM AZ BD BH BN BT CN CY GE HK ID IL IN IQ IR JO JP KG KH KP KR KW KZ LA LB LK MM MN MO "
            "MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE",
    "Europe": "AD AL AT AX BA BE BG BY CH CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT "
              "LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK",
    "North America": "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS "
                     "MX NI PA PM PR SV SX TC TT US VC VG VI",
    "South America": "AR BO BR CL CO EC FK GF GY PE PY SR UY VE",
    "Oceania": "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF WS",
    "Antarctica": "AQ BV GS HM TF",
}
_BY_CODE = {code: name for name, codes in _CONTINENTS.items() for code in codes.split()}

# names registries use that pycountry does not resolve
_ALIASES = {
    "turkey": "TR",
    "korea, republic of": "KR",
    "south korea": "KR",
    "korea, democratic people's republic of": "KP",
    "macedonia, the former yugoslav republic of": "MK",
    "north macedonia": "MK",
    "former serbia and montenegro": "RS",
    "serbia and montenegro": "RS",
    "kosovo": "XK",
    "taiwan": "TW",
    "iran": "IR",
    "russia": "RU",
    "vietnam": "VN",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "czech republic": "CZ",
    "congo, the democratic republic of the": "CD",
    "palestinian territory, occupied": "PS",
    "palestinian territories, occupied": "PS",
    "uk": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "usa": "US",
}


@cache
def country_code(name: str) -> str | None:
    """ISO alpha-2 code of a country name as registries write it, or None."""
    key = name.strip().lower()
    if not key:
        return None
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return pycountry.countries.lookup(name.strip()).alpha_2
    except LookupError:
        return None


def continent(name: str) -> str | None:
    """Continent of a country name, or None when the name is not recognised."""
    code = country_code(name)
    return _BY_CODE.get(code) if code else None
