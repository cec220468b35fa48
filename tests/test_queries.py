"""Read-side queries: search, per-column filters and sorting in SQL, display-ready rows."""

import time

import pytest

from models.dialect import TooSlow, fetch_all, is_sqlite, time_limit
from models.queries import RecordQuery, choices
from models.schema import Actor, Mission, database
from models.services import create_record


def titles(query):
    rows = query.rows(query.ids())
    return [rows[i]["title"] for i in query.ids()]


def test_search_finds_events_by_title_venue_and_related_names(seeded_db):
    assert titles(RecordQuery("mediation-events", search="almaty", sort_column="start_date")) == [
        "Iran–P5+1 nuclear talks in Almaty, first round", "Iran–P5+1 nuclear talks in Almaty, second round",
        "Armenia–Azerbaijan talks in Almaty"]
    # a related record's name matches too: the process is shown (and found) by name
    assert len(RecordQuery("mediation-events", search="Astana process").ids()) == 2


def test_sort_by_edtf_date_is_chronological_and_reversible(seeded_db):
    query = RecordQuery("mediation-events", sort_column="start_date")
    rows = query.rows(query.ids())
    dates = [rows[i]["start_date"] for i in query.ids()]
    assert dates == ["February 2013", "April 2013", "around 2017", "June 2023", "10 May 2024"]
    query.descending = True
    assert titles(query)[0] == "Armenia–Azerbaijan talks in Almaty"


def test_sort_by_related_name(seeded_db):
    query = RecordQuery("contingents", sort_column="contributor")
    rows = query.rows(query.ids())
    assert [rows[i]["contributor"] for i in query.ids()] == ["Ireland", "Kazakhstan", "Kazakhstan"]


def test_column_filters_combine(seeded_db):
    query = RecordQuery("contributions", filters={"mission": "UNDOF"})
    [row] = query.rows(query.ids()).values()
    assert (row["contributor"], row["personnel_type"], row["total_count"]) == ("Kazakhstan", "Troops", 139)
    assert RecordQuery("contributions", filters={"personnel_type": "staff"}).count() == 2
    assert RecordQuery("contributions", filters={"personnel_type": "staff", "total_count": "2"}).count() == 1
    assert RecordQuery("contributions", filters={"reporting_date": "2024-05"}).count() == 5
    assert RecordQuery("contributions", filters={"total_count": "many"}).count() == 0


def test_rows_show_names_labels_and_readable_dates(seeded_db):
    query = RecordQuery("incidents")
    [row] = query.rows(query.ids()).values()
    assert row["mission"] == "UNISFA" and row["date"] == "February 2024"
    assert row["killed_count"] == 40 and row["killed_qualifier"] == "Around"


def test_count_matches_ids_and_pages_follow_order(seeded_db):
    query = RecordQuery("actors", search="island", sort_column="name")
    ids = query.ids()
    assert query.count() == len(ids) > 5
    assert [row["id"] for row in query.page(2, 3)] == ids[2:5]


def test_choices_for_type_ahead(seeded_db):
    names = [name for _, name in choices("actors", "kazak")]
    assert names == ["Kazakhstan"]
    assert ("UNDOF" in [name for _, name in choices("missions", "und")])


def _contribution(country: str, mission: str | None, total: int, note: str = "") -> int:
    values = {"reporting_date": "2024-05-31", "contributor": Actor.get(Actor.name == country).id,
              "personnel_type": "Troops", "total_count": total, "mission_note": note}
    if mission:
        values["mission"] = Mission.get(Mission.acronym == mission).id
    return create_record("contributions", values)


def test_search_finds_actors_by_alias(seeded_db):
    def names(text):
        query = RecordQuery("actors", search=text)
        return [row["name"] for row in query.rows(query.ids()).values()]

    assert names("Қазақстан") == ["Kazakhstan"]  # the Kazakh name, stored as an alias
    assert names("Turkey") == ["Türkiye"]
    assert names("TURKEY") == ["Türkiye"]  # aliases match whatever the case
    assert RecordQuery("actors", filters={"name": "Turkey"}).count() == 1


def test_records_are_found_by_an_alias_of_the_actor_they_refer_to(seeded_db):
    turkish = _contribution("Türkiye", "UNDOF", 12)
    for query in (RecordQuery("contributions", search="Turkey"),
                  RecordQuery("contributions", filters={"contributor": "turkey"})):
        rows = query.rows(query.ids())
        assert list(rows) == [turkish] and rows[turkish]["contributor"] == "Türkiye"
    assert RecordQuery("contributions", search="Republic of Turkey").count() == 1
    assert RecordQuery("contributions", search="Ottoman").count() == 0


def test_pages_sorted_by_an_optional_reference_follow_the_full_order(seeded_db):
    # Rows without a mission and rows with one are read as two segments; the pages must still follow the
    # order of the whole view, at every offset and in both directions.
    empty_before = sum(1 for row in RecordQuery("contributions").page(0, 1000) if not row["mission"])
    for n in range(6):
        _contribution("Ireland", None, n, note=f"not named in the source {n}")
    for descending in (False, True):
        query = RecordQuery("contributions", sort_column="mission", descending=descending)
        ids = query.ids()
        assert len(ids) > 8
        for offset in range(0, len(ids) + 1, 3):
            assert [row["id"] for row in query.page(offset, 4)] == ids[offset:offset + 4]
        missions = [row["mission"] for row in query.page(0, len(ids))]
        named = [m for m in missions if m]
        assert named == sorted(named, reverse=descending) and missions.count("") == empty_before + 6


def test_first_page_sorted_by_country_does_not_sort_the_whole_table(seeded_db):
    query = RecordQuery("contributions", sort_column="contributor", descending=True)
    assert [row["id"] for row in query.page(0, 3)] == query.ids()[:3]
    if is_sqlite():  # the plan: countries walked in name order through the index, no temporary sort
        sql, params = query.ids_statement()
        plan = " ".join(str(row) for row in database.execute_sql(f"EXPLAIN QUERY PLAN {sql} LIMIT 50", params))
        assert "TEMP B-TREE" not in plan


def test_a_read_past_its_time_limit_gives_up_and_the_connection_goes_on(db):
    endless = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000000) "
               "SELECT count(*) FROM n")  # the same statement on both engines
    started = time.perf_counter()
    with pytest.raises(TooSlow), time_limit(0.05):
        db.execute_sql(endless).fetchone()
    assert time.perf_counter() - started < 2  # the hundred million steps were not all taken
    with time_limit(5):
        assert db.execute_sql("SELECT count(*) FROM actor").fetchone()[0] == 0
    assert db.execute_sql("SELECT 1").fetchone()[0] == 1  # no limit left behind


def test_a_time_limit_met_while_rows_are_fetched_gives_up_the_same_way(db):
    # The first rows come at once and the limit strikes while the rest are stepped: SQLite reports that
    # from the fetch, not from the start of the statement.
    many = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10000000) SELECT x FROM n"
    with pytest.raises(TooSlow), time_limit(0.05):
        fetch_all(many, [])
    assert fetch_all("SELECT count(*) FROM actor", []) == [(0,)]
