"""A patient's time zone from a postal address, when the EHR does not give one.

Only US addresses (country US/USA/United States or none with a US state) are resolved, to the
zone where most of the state's population lives; a state split across zones (e.g. TN, KY, FL,
IN, TX) may be an hour off for some patients. The zone only sets quiet hours, so an hour off
errs towards a message arriving a little early or late in the evening, never at night.
"""

from __future__ import annotations

_EASTERN, _CENTRAL, _MOUNTAIN, _PACIFIC = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
)
_STATES: dict[str, tuple[str, str]] = {
    "AL": ("Alabama", _CENTRAL),
    "AK": ("Alaska", "America/Anchorage"),
    "AZ": ("Arizona", "America/Phoenix"),
    "AR": ("Arkansas", _CENTRAL),
    "CA": ("California", _PACIFIC),
    "CO": ("Colorado", _MOUNTAIN),
    "CT": ("Connecticut", _EASTERN),
    "DE": ("Delaware", _EASTERN),
    "DC": ("District of Columbia", _EASTERN),
    "FL": ("Florida", _EASTERN),
    "GA": ("Georgia", _EASTERN),
    "HI": ("Hawaii", "Pacific/Honolulu"),
    "ID": ("Idaho", "America/Boise"),
    "IL": ("Illinois", _CENTRAL),
    "IN": ("Indiana", "America/Indiana/Indianapolis"),
    "IA": ("Iowa", _CENTRAL),
    "KS": ("Kansas", _CENTRAL),
    "KY": ("Kentucky", "America/Kentucky/Louisville"),
    "LA": ("Louisiana", _CENTRAL),
    "ME": ("Maine", _EASTERN),
    "MD": ("Maryland", _EASTERN),
    "MA": ("Massachusetts", _EASTERN),
    "MI": ("Michigan", "America/Detroit"),
    "MN": ("Minnesota", _CENTRAL),
    "MS": ("Mississippi", _CENTRAL),
    "MO": ("Missouri", _CENTRAL),
    "MT": ("Montana", _MOUNTAIN),
    "NE": ("Nebraska", _CENTRAL),
    "NV": ("Nevada", _PACIFIC),
    "NH": ("New Hampshire", _EASTERN),
    "NJ": ("New Jersey", _EASTERN),
    "NM": ("New Mexico", _MOUNTAIN),
    "NY": ("New York", _EASTERN),
    "NC": ("North Carolina", _EASTERN),
    "ND": ("North Dakota", _CENTRAL),
    "OH": ("Ohio", _EASTERN),
    "OK": ("Oklahoma", _CENTRAL),
    "OR": ("Oregon", _PACIFIC),
    "PA": ("Pennsylvania", _EASTERN),
    "RI": ("Rhode Island", _EASTERN),
    "SC": ("South Carolina", _EASTERN),
    "SD": ("South Dakota", _CENTRAL),
    "TN": ("Tennessee", _CENTRAL),
    "TX": ("Texas", _CENTRAL),
    "UT": ("Utah", _MOUNTAIN),
    "VT": ("Vermont", _EASTERN),
    "VA": ("Virginia", _EASTERN),
    "WA": ("Washington", _PACIFIC),
    "WV": ("West Virginia", _EASTERN),
    "WI": ("Wisconsin", _CENTRAL),
    "WY": ("Wyoming", _MOUNTAIN),
    "PR": ("Puerto Rico", "America/Puerto_Rico"),
    "VI": ("Virgin Islands", "America/St_Thomas"),
    "GU": ("Guam", "Pacific/Guam"),
}
_BY_NAME = {name.upper(): zone for name, zone in _STATES.values()}
_US = {"", "US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA", "U.S.", "U.S.A."}


def state_of_address(state: str | None, country: str | None) -> str | None:
    """The postal code of a US state (given as a code or a name); None outside the US."""
    if (country or "").strip().upper() not in _US:
        return None
    key = (state or "").strip().upper()
    if key in _STATES:
        return key
    return next((code for code, (name, _) in _STATES.items() if name.upper() == key), None)


def zone_from_address(state: str | None, country: str | None) -> str | None:
    """The IANA zone of a US state (code or name); None outside the US or when unknown."""
    if (country or "").strip().upper() not in _US:
        return None
    key = (state or "").strip().upper()
    if key in _STATES:
        return _STATES[key][1]
    return _BY_NAME.get(key)
