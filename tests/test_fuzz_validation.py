"""Arbitrary input never crashes validation or the services, and invalid input writes nothing."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import schema
from models.records import RECORD_TYPES
from models.services import RecordRefused, create_record
from models.validation import validate_record

ANY_VALUE = st.one_of(
    st.none(), st.text(max_size=40), st.integers(min_value=-10**20, max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.sampled_from(["2013-02", "2017~", "2024-13", "31/05/2024", "Troops", "party", "draft", "state", "KAZ"]),
)


def raw_records(spec):
    return st.fixed_dictionaries({}, optional={f.name: ANY_VALUE for f in spec.fields})


@pytest.mark.parametrize("key", list(RECORD_TYPES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_validation_returns_a_report_for_any_input(key, data):
    spec = RECORD_TYPES[key]
    clean, report = validate_record(spec, data.draw(raw_records(spec)))
    assert all(isinstance(issue.message, str) and issue.message for issue in report.issues)
    if report.ok:
        for field in spec.fields:
            assert field.name in clean


@pytest.mark.parametrize("key", ["contributions", "mediation-events", "actors", "missions", "incidents"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_services_write_nothing_for_refused_input(db, key, data):
    spec = RECORD_TYPES[key]
    raw = data.draw(raw_records(spec))
    rows_before = spec.model.select().count()
    log_before = schema.ChangeLogEntry.select().count()
    try:
        create_record(key, raw)
    except RecordRefused as refused:
        assert refused.report.issues and str(refused)
        assert spec.model.select().count() == rows_before
        assert schema.ChangeLogEntry.select().count() == log_before
    else:
        assert spec.model.select().count() == rows_before + 1
        assert schema.ChangeLogEntry.select().count() == log_before + 1
