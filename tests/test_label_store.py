"""Labeling storage, assignment rules, export/import and consensus arithmetic (no web server)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict

import pandas as pd
import pytest

from unitscope.label import (
    TYPES,
    Answer,
    DuplicateAnswer,
    LabelStore,
    UnitFull,
    UnitKey,
    consensus,
    export_answers,
    human_results,
    import_answers,
    label_key,
    labels_match,
    load_catalog,
    normalize_label,
    read_answers,
    write_human_results,
)
from unitscope.label.assignment import choose_unit
from unitscope.label.storage import StorageError, hash_token, utc_timestamp

from conftest_label import make_results

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class FakeClock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def units(n: int) -> list[UnitKey]:
    return [UnitKey("net", "conv5", u) for u in range(n)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite", clock=clock)


# -- taxonomy --------------------------------------------------------------


def test_types_are_the_papers_six_in_order():
    assert TYPES == ("simple", "texture", "region", "part", "object", "scene")


def test_label_normalisation():
    assert normalize_label("  Coffee_Table ") == "coffee table"
    assert normalize_label("street-s") == "street"
    assert normalize_label("red-c") == "red"
    assert normalize_label("t-shirt") == "t-shirt"
    assert label_key("Beds") == "bed"
    assert label_key("glass") == "glass"
    assert label_key("bus") == "bus"
    assert labels_match("Beds", "bed")
    assert labels_match("bedroom", "bedroom-s")
    assert not labels_match("bed", "sofa")
    assert not labels_match("", "")


# -- assignment ------------------------------------------------------------


def test_choose_unit_rules():
    keys = ["a", "b", "c", "d"]
    # Most-answered unit with a free slot first; catalog order breaks ties.
    assert choose_unit(keys, k=3, answered_by_me=set(), answer_counts={}, leased_by_others={}) == "a"
    assert choose_unit(keys, k=3, answered_by_me=set(), answer_counts={"c": 2, "b": 1}, leased_by_others={}) == "c"
    # Never a unit I answered.
    assert choose_unit(keys, k=3, answered_by_me={"c"}, answer_counts={"c": 2, "b": 1}, leased_by_others={}) == "b"
    # Others' live leases take slots: c has 2 answers + 1 lease = full.
    assert choose_unit(keys, k=3, answered_by_me=set(), answer_counts={"c": 2}, leased_by_others={"c": 1}) == "a"
    # Full units are skipped; nothing left gives None.
    assert choose_unit(keys, k=1, answered_by_me={"d"}, answer_counts={"a": 1, "b": 1, "c": 1}, leased_by_others={}) is None
    with pytest.raises(ValueError, match="k must be at least 1"):
        choose_unit(keys, k=0, answered_by_me=set(), answer_counts={}, leased_by_others={})


def test_leases_spread_annotators_and_expire(store, clock):
    keys = units(3)
    x, y, z = (store.annotator_for_token(store.add_annotator(name)) for name in ("x", "y", "z"))
    # k=2: x and y share unit 0 (0 answers + 1 lease < 2), z gets unit 1.
    assert store.lease_next(x, keys, k=2, lease_seconds=60) == keys[0]
    assert store.lease_next(y, keys, k=2, lease_seconds=60) == keys[0]
    assert store.lease_next(z, keys, k=2, lease_seconds=60) == keys[1]
    # Asking again (a page reload) shows the held unit again.
    assert store.lease_next(x, keys, k=2, lease_seconds=60) == keys[0]
    store.submit(x, keys[0], label="bed", type="object", marked=[], n_images=6, k=2)
    # x never sees unit 0 again; unit 1 has z's lease only, so x joins it.
    assert store.lease_next(x, keys, k=2, lease_seconds=60) == keys[1]
    # y's lease on unit 0 expires: a newcomer may take it.
    clock.now += 61
    w = store.annotator_for_token(store.add_annotator("w"))
    assert store.lease_next(w, keys, k=2, lease_seconds=60) == keys[0]


def test_every_unit_gets_k_answers_from_k_different_annotators(store):
    keys = units(7)
    k = 3
    people = [store.annotator_for_token(store.add_annotator(f"a{i}")) for i in range(5)]
    seen: dict[str, list[UnitKey]] = defaultdict(list)
    active = list(people)
    while active:
        for person in list(active):
            key = store.lease_next(person, keys, k=k)
            if key is None:
                active.remove(person)
                continue
            seen[person.name].append(key)
            store.submit(person, key, label="x", type="object", marked=[], n_images=6, k=k)
    answers = store.answers()
    assert len(answers) == len(keys) * k == 21
    per_unit = defaultdict(set)
    for answer in answers:
        per_unit[answer.key].add(answer.annotator)
    assert {key: len(names) for key, names in per_unit.items()} == {key: 3 for key in keys}
    for name, shown in seen.items():
        assert len(shown) == len(set(shown)), f"{name} saw a unit twice"
    progress = store.progress(people[0], keys, k=k)
    assert progress.as_dict() == {
        "mine": len(seen["a0"]),
        "available": 0,
        "units_total": 7,
        "units_complete": 7,
        "annotations_done": 21,
        "annotations_needed": 21,
    }


def test_submit_refuses_duplicates_and_full_units(store):
    keys = units(1)
    a, b, c = (store.annotator_for_token(store.add_annotator(name)) for name in "abc")
    store.submit(a, keys[0], label="bed", type="object", marked=[], n_images=6, k=2)
    with pytest.raises(DuplicateAnswer, match="already answered"):
        store.submit(a, keys[0], label="sofa", type="object", marked=[], n_images=6, k=2)
    store.submit(b, keys[0], label="bed", type="object", marked=[], n_images=6, k=2)
    with pytest.raises(UnitFull, match="already has its 2 annotations"):
        store.submit(c, keys[0], label="bed", type="object", marked=[], n_images=6, k=2)
    with pytest.raises(ValueError, match="unknown unit type"):
        store.submit(c, units(2)[1], label="bed", type="thing", marked=[], n_images=6, k=2)
    with pytest.raises(ValueError, match="duplicates"):
        store.submit(c, units(2)[1], label="bed", type="object", marked=["i", "i"], n_images=6, k=2)
    assert len(store.answers()) == 2


def test_answers_are_stored_exactly(store, clock):
    keys = units(2)
    ada = store.annotator_for_token(store.add_annotator("ada"))
    assert store.lease_next(ada, keys, k=3) == keys[0]
    clock.now += 12.5
    label = "Ünïcode  bed <b>&"  # inner spaces and markup kept as typed
    store.submit(ada, keys[0], label=label, type="part", marked=["img3", "img1", "img0"], n_images=60, k=3)
    clock.now += 1
    store.submit(ada, keys[1], label="sky", type="region", marked=[], n_images=60, k=3)  # never shown
    first, second = store.answers()
    assert first == Answer(
        annotator="ada",
        network="net",
        layer="conv5",
        unit=0,
        label=label,
        type="part",
        marked=("img3", "img1", "img0"),
        n_images=60,
        shown_at="2023-11-14T22:13:20.000000Z",
        submitted_at="2023-11-14T22:13:32.500000Z",
    )
    assert first.precision == 1 - 3 / 60
    assert second.shown_at is None and second.submitted_at == "2023-11-14T22:13:33.500000Z"
    # The raw row, too: marked is a JSON list in the order given.
    con = sqlite3.connect(store.path)
    row = con.execute("SELECT label, type, marked, n_images FROM answers ORDER BY id LIMIT 1").fetchone()
    con.close()
    assert row == (label, "part", '["img3", "img1", "img0"]', 60)


def test_database_is_wal_and_tokens_are_hashed(store, tmp_path):
    token = store.add_annotator("ada")
    assert len(token) == 32
    assert store.annotator_for_token(token).name == "ada"
    assert store.annotator_for_token("not-a-token") is None
    assert store.annotator_for_token("") is None
    assert store.annotator_for_token(None) is None
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT token_hash FROM annotators").fetchone()[0] == hash_token(token)
    con.close()
    for path in tmp_path.glob("labels.sqlite*"):
        assert token.encode() not in path.read_bytes()
    with pytest.raises(ValueError, match="already exists"):
        store.add_annotator("ada")
    new = store.add_annotator("ada", replace_token=True)
    assert store.annotator_for_token(token) is None
    assert store.annotator_for_token(new).name == "ada"
    with pytest.raises(ValueError, match="invalid annotator name"):
        store.add_annotator("<script>")
    with pytest.raises(ValueError, match="invalid annotator name"):
        store.add_annotator("")


def test_not_a_database(tmp_path):
    path = tmp_path / "labels.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a labeling database"):
        LabelStore(path)


def test_another_programs_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (text TEXT)")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(ValueError, match="is not a labeling database \\(an SQLite database of another program"):
        LabelStore(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


@pytest.mark.parametrize("message", ["database or disk is full", "disk I/O error", "attempt to write a readonly database"])
def test_disk_errors_are_storage_errors_not_not_a_database(tmp_path, monkeypatch, message):
    existing = LabelStore(tmp_path / "labels.sqlite")

    def failing(self):
        raise sqlite3.OperationalError(message)

    monkeypatch.setattr(LabelStore, "_connect", failing)
    with pytest.raises(StorageError, match=f"cannot use the labeling database .*: {message} \\(is the disk full") as error:
        LabelStore(tmp_path / "new.sqlite")
    assert "not a labeling database" not in str(error.value)
    assert not (tmp_path / "new.sqlite").exists()  # a database that could not be set up is not left behind
    with pytest.raises(StorageError, match=message):
        existing.add_annotator("ada")
    assert isinstance(error.value, OSError)  # the CLI's one-line errors and the app's 503 rely on it


@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_database_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        store = LabelStore(tmp_path / "labels.sqlite")
        ada = store.annotator_for_token(store.add_annotator("ada"))
        con = sqlite3.connect(store.path)  # held open, so the -wal and -shm files stay to be looked at
        con.execute("SELECT COUNT(*) FROM answers").fetchone()
        store.submit(ada, UnitKey("net", "conv5", 0), label="bed", type="object", marked=[], n_images=6, k=3)
        modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
        con.close()
    finally:
        os.umask(old)
    assert modes == {"labels.sqlite": mode, "labels.sqlite-wal": mode, "labels.sqlite-shm": mode}


def test_utc_timestamp():
    assert utc_timestamp(T0) == "2023-11-14T22:13:20.000000Z"


# -- export / import ------------------------------------------------------


def _filled(store: LabelStore, clock: FakeClock) -> None:
    keys = units(3)
    people = [store.annotator_for_token(store.add_annotator(name)) for name in ("ada", "bo", "cy")]
    labels = ["bed", 'quote " and ; semi', "Ünïcode, comma"]
    for i, person in enumerate(people):
        for j, key in enumerate(keys):
            if (i + j) % 3 == 2:
                store.lease_next(person, [key], k=3)
            clock.now += 1.25
            marked = [f"img{j}x{r}" for r in range(i + j)]
            store.submit(person, key, label=labels[(i + j) % 3], type=TYPES[(i + 2 * j) % 6], marked=marked, n_images=6, k=3)


@pytest.fixture
def net_catalog(tmp_path):
    """The units ``_filled`` answers (net/conv5/0..2, six segmentations each), as a results directory."""
    return load_catalog(make_results(tmp_path, networks={"net": {"conv5": 3}}, n_images=6, size=8), n_images=None)


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_export_import_round_trip(tmp_path, clock, suffix, net_catalog):
    source = LabelStore(tmp_path / "a.sqlite", clock=clock)
    _filled(source, clock)
    first = tmp_path / f"first.{suffix}"
    assert export_answers(source, first) == 9
    target = LabelStore(tmp_path / "b.sqlite", clock=clock)
    counts = import_answers(target, first, catalog=net_catalog)
    assert (counts.added, counts.unchanged, counts.conflicting) == (9, 0, 0)
    assert target.answers() == source.answers()
    second = tmp_path / f"second.{suffix}"
    export_answers(target, second)
    assert second.read_bytes() == first.read_bytes()
    # Importing again adds nothing; imported annotators have no token yet.
    counts = import_answers(target, first, catalog=net_catalog)
    assert (counts.added, counts.unchanged, counts.conflicting) == (0, 9, 0)
    assert [a.name for a in target.annotators()] == ["ada", "bo", "cy"]
    token = target.add_annotator("ada")  # an imported annotator gets a token without --replace-token
    assert target.annotator_for_token(token).name == "ada"


def test_import_reports_conflicts_and_bad_rows(tmp_path, clock, net_catalog):
    source = LabelStore(tmp_path / "a.sqlite", clock=clock)
    _filled(source, clock)
    path = tmp_path / "answers.csv"
    export_answers(source, path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[0, "label"] = "something else"
    changed = tmp_path / "changed.csv"
    frame.to_csv(changed, index=False)
    counts = import_answers(source, changed, catalog=net_catalog)
    assert (counts.added, counts.unchanged, counts.conflicting) == (0, 8, 1)
    frame.loc[3, "type"] = "thing"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv:5: unknown unit type 'thing'"):
        read_answers(bad, catalog=net_catalog)
    with pytest.raises(ValueError, match="use a .csv or .json file"):
        read_answers(tmp_path / "answers.txt", catalog=net_catalog)
    (tmp_path / "other.json").write_text(json.dumps({"answers": []}))
    with pytest.raises(ValueError, match="not a unitscope labels export"):
        read_answers(tmp_path / "other.json", catalog=net_catalog)


# -- consensus arithmetic ------------------------------------------------


def _answer(label: str, kind: str, n_marked: int, *, unit: int = 1, who: str = "x", n_images: int = 60) -> Answer:
    marked = tuple(f"i{m}" for m in range(n_marked))
    return Answer(who, "net", "conv5", unit, label, kind, marked, n_images, None, "t")


def test_consensus_on_known_answers():
    result = consensus([_answer("Bed", "object", 0), _answer("beds", "object", 6), _answer("pillow", "part", 3)])
    assert result.label == "bed"
    assert result.type == "object"
    assert result.precision == pytest.approx((1.0 + 0.9 + 0.95) / 3, abs=1e-15)
    assert result.agreement == pytest.approx(2 / 3, abs=1e-15)
    assert result.type_agreement == pytest.approx(2 / 3, abs=1e-15)
    assert result.n_annotations == 3
    assert result.labels == ("bed", "beds", "pillow")


def test_consensus_ties_and_unanimity():
    # Three different labels: the alphabetically first key wins, agreement 1/3.
    tie = consensus([_answer("sofa", "object", 0), _answer("armchair", "scene", 0), _answer("couch", "part", 60)])
    assert (tie.label, tie.agreement) == ("armchair", pytest.approx(1 / 3))
    # Type tie: the type listed first in TYPES (part before object before scene).
    assert tie.type == "part" and tie.type_agreement == pytest.approx(1 / 3)
    assert tie.precision == pytest.approx(2 / 3)
    same = consensus([_answer("sky", "region", 15), _answer("Sky ", "region", 30)])
    assert (same.label, same.type, same.agreement, same.type_agreement) == ("sky", "region", 1.0, 1.0)
    assert same.precision == 0.625
    with pytest.raises(ValueError, match="at least one"):
        consensus([])
    with pytest.raises(ValueError, match="single unit"):
        consensus([_answer("a", "object", 0, unit=1), _answer("a", "object", 0, unit=2)])


def test_write_human_results_known_numbers(tmp_path, clock):
    results = make_results(tmp_path, networks={"scenenet": {"conv4": 2, "conv5": 3}}, n_images=6)
    store = LabelStore(results / "labels.sqlite", clock=clock)
    people = [store.annotator_for_token(store.add_annotator(name)) for name in ("ada", "bo", "cy")]
    # Automatic labels (conftest_label.AUTO_LABELS): unit 0 bed/object, 1 sky/region, 2 striped/texture.
    plan = {
        ("conv4", 0): [("bed", "object", 0), ("Beds", "object", 1), ("bed", "object", 2)],  # precision 5/6
        ("conv4", 1): [("cloud", "object", 3), ("sky", "region", 0), ("sky", "region", 3)],  # precision 2/3
        ("conv5", 0): [("pillow", "part", 6), ("pillow", "part", 0), ("bed", "object", 0)],  # precision 2/3
        ("conv5", 2): [("stripes", "texture", 0)],  # one answer so far, precision 1
    }
    for (layer, unit), answers in plan.items():
        for person, (label, kind, n_marked) in zip(people, answers):
            marked = [f"img{unit}x{r}" for r in range(n_marked)]
            store.submit(person, UnitKey("scenenet", layer, unit), label=label, type=kind, marked=marked, n_images=6, k=3)
    written = write_human_results(results)
    assert written == [results / "scenenet" / "human"]
    folder = written[0]
    units_table = pd.read_csv(folder / "units.csv", keep_default_na=False)
    assert list(units_table.columns[:8]) == ["network", "layer", "unit", "label", "type", "precision", "agreement", "n_annotations"]
    assert units_table[["layer", "unit", "label", "type", "n_annotations"]].values.tolist() == [
        ["conv4", 0, "bed", "object", 3],
        ["conv4", 1, "sky", "region", 3],
        ["conv5", 0, "pillow", "part", 3],
        ["conv5", 2, "stripes", "texture", 1],
    ]
    assert units_table["precision"].tolist() == pytest.approx([5 / 6, 2 / 3, 2 / 3, 1.0], abs=1e-12)
    assert units_table["agreement"].tolist() == pytest.approx([1.0, 2 / 3, 2 / 3, 1.0], abs=1e-12)

    layers_table = pd.read_csv(folder / "layers.csv")
    conv4, conv5 = layers_table.to_dict("records")
    assert conv4["n_units"] == 2 and conv5["n_units"] == 2
    assert (conv4["share_object"], conv4["share_region"], conv4["share_part"]) == (0.5, 0.5, 0.0)
    assert (conv5["share_part"], conv5["share_texture"], conv5["share_object"]) == (0.5, 0.5, 0.0)
    assert conv4["mean_precision"] == pytest.approx((5 / 6 + 2 / 3) / 2, abs=1e-12)
    assert conv5["mean_precision"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-12)
    assert (conv4["precision_over_75"], conv5["precision_over_75"]) == (0.5, 0.5)

    compare = pd.read_csv(folder / "compare.csv", keep_default_na=False)
    assert compare[["layer", "unit", "human_label", "auto_label", "label_match", "type_match"]].values.tolist() == [
        ["conv4", 0, "bed", "bed", True, True],
        ["conv4", 1, "sky", "sky", True, True],
        ["conv5", 0, "pillow", "bed", False, False],
        ["conv5", 2, "stripes", "striped", False, True],
    ]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_units_labelled"] == 4
    assert summary["n_annotations"] == 10
    assert summary["n_annotators"] == 3
    assert summary["n_compared"] == 4
    assert summary["label_agreement_rate"] == 0.5
    assert summary["type_agreement_rate"] == 0.75
    assert summary["detectors"]["n_compared"] == 4  # IoUs 0.12, 0.08, 0.12, 0.05 are all > 0.04
    confusion = summary["confusion"]["counts"]
    assert confusion["object"]["object"] == 1
    assert confusion["region"]["region"] == 1
    assert confusion["part"]["object"] == 1
    assert confusion["texture"]["texture"] == 1
    assert sum(sum(row.values()) for row in confusion.values()) == 4
    assert summary["mean_precision"] == pytest.approx((5 / 6 + 2 / 3 + 2 / 3 + 1) / 4, abs=1e-12)
    # The same numbers from the in-memory API.
    assert human_results(results)["scenenet"].units["label"].tolist() == ["bed", "sky", "pillow", "stripes"]


def test_human_results_needs_a_database(tmp_path):
    with pytest.raises(FileNotFoundError, match="no labeling database"):
        human_results(tmp_path)


# -- catalog ---------------------------------------------------------------


def test_catalog_reads_the_results_contract(tmp_path):
    results = make_results(
        tmp_path,
        networks={"scenenet": {"conv5": 2}, "objectnet": {"conv5": 1}},
        n_images=4,
        concepts=[(1, "painting", "object"), (2, "wood", "material")],
    )
    catalog = load_catalog(results, n_images=3)
    assert [str(key) for key in catalog.keys] == ["objectnet/conv5/0", "scenenet/conv5/0", "scenenet/conv5/1"]
    entry = catalog.get(UnitKey("scenenet", "conv5", 1))
    assert [image.name for image in entry.images] == ["000_img1x0.jpg", "001_img1x1.jpg", "002_img1x2.jpg"]
    assert entry.image_ids == ("img1x0", "img1x1", "img1x2")
    assert (entry.auto_label, entry.auto_type, entry.auto_iou) == ("sky", "region", 0.08)
    assert catalog.vocabulary == ("bed", "painting", "sky", "wood")
    assert [str(k) for k in load_catalog(results, networks=["scenenet"], layers=["conv5"]).keys] == [
        "scenenet/conv5/0",
        "scenenet/conv5/1",
    ]
    with pytest.raises(LookupError, match="network\\(s\\) nope not in"):
        load_catalog(results, networks=["nope"])
    with pytest.raises(LookupError, match="holds no <network>/dissect/units.csv"):
        load_catalog(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_catalog(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"n_images \(--images\) must be at least 1"):
        load_catalog(results, n_images=0)
