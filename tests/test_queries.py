"""Read-side queries: search, per-column filters and sorting in SQL, display-ready rows."""

from models.queries import RecordQuery, choices


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
