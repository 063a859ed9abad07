"""compat.brain_plasma.Brain against the brain-plasma README's examples and its own tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allye_data_connector.compat.brain_plasma import Brain, BrainAsleepError
from allye_data_connector.errors import InvalidArgumentError, StoreFullError
from tests.helpers import run_python


@pytest.fixture
def brain(store: Path) -> Brain:
    return Brain(path=str(store))


def test_readme_basic_usage(store: Path) -> None:
    brain = Brain(path=str(store), start_process=True)
    this = "a text object"
    that = [1, 2, 3, 4]
    those = pd.DataFrame(dict(this=[1, 2, 3, 4], that=[4, 5, 6, 7]))
    brain["that"] = that
    brain.learn(this, "this")
    brain.learn(those, "those")
    assert brain["this"] == "a text object"
    assert brain.recall("that") == [1, 2, 3, 4]
    assert type(brain.recall("those")) is pd.DataFrame
    pd.testing.assert_frame_equal(brain.recall("those"), those)
    brain.forget("this")
    with pytest.raises(KeyError):
        brain.recall("this")
    assert sorted(brain.names()) == ["that", "those"]


def test_defaults_and_attributes(store: Path) -> None:
    brain = Brain(path=str(store))
    assert brain.path == str(store) and brain.namespace == "default"
    assert brain.bytes == 50000000 == brain.size() and brain.mb == "50 MB"
    assert hasattr(brain, "client")


def test_old_test_script_objects_round_trip(brain: Brain) -> None:
    # The objects of brain-plasma's own test script (tests.py).
    a = dict(this=[1, 2, 3, 4], that=[2, 3, 4, 5])
    values = [a, "this is a string", b"this is a byte string", ["this", "is", "a", "list"], json.dumps(a),
              {1, 2, 3, 4, 5}, None, (3, 4, 5), 5, str]
    names = list("abcdefghij")
    for thing, name in zip(values, names):
        brain.learn(thing, name)
    for thing, name in zip(values, names):
        assert brain.recall(name) == thing
    brain.learn(pd.DataFrame(a), "l")
    m = pd.DataFrame(dict(this=list(range(100000)), that=list(range(100000))[::-1]))
    brain.learn(m, "m")
    n = pd.DataFrame(dict(this=values))
    brain.learn(n, "n")
    brain.learn(pd.Series([1, 2, 3, 4, 5, 6]), "o")
    brain.learn(np.array([1, 2, 3, 4, 5]), "p")
    brain.learn(np.mean, "q")
    assert list(brain.recall("m").this[:5].values) == [0, 1, 2, 3, 4]
    assert brain.recall("n").values[0] == n.values[0]
    assert brain.recall("o").values[0] == 1
    assert list(brain.recall("p")) == [1, 2, 3, 4, 5] and brain.recall("q") is np.mean
    assert set(brain.names()) == set("abcdefghijlmnopq")
    for name in "abcdefghijlmnopq":
        assert brain.info(name)["name"] == name
    # re-learning replaces values without adding names
    brain.learn(pd.DataFrame(a), "a")
    brain.learn(m, "b")
    assert list(brain.recall("a").columns) == ["this", "that"]
    assert len(brain.names()) == 16
    for name in "abcdefghijlmnopq":
        brain.forget(name)
        with pytest.raises(KeyError):
            brain.recall(name)
    assert brain.names() == []


def test_bracket_notation_and_mapping_dunders(brain: Brain) -> None:
    brain["this"] = "that"
    assert brain["this"] == "that" and "this" in brain and len(brain) == 1 and brain.exists("this")
    del brain["this"]
    assert not brain.exists("this") and "this" not in brain
    brain.forget("never")  # forgetting a missing name does nothing
    with pytest.raises(KeyError):
        brain["this"]


def test_description_info_and_knowledge(brain: Brain) -> None:
    brain.learn([1], "x", description="a list")
    brain.learn([2], "y")
    assert brain.info("x")["description"] == "a list"
    assert brain.info("y")["description"] is False
    brain.learn([3], "x")  # no new description: the old one stays
    assert brain.info("x")["description"] == "a list" and brain["x"] == [3]
    with pytest.raises(KeyError):
        brain.info("missing")
    know = brain.knowledge()
    assert [k["name"] for k in know] == ["x", "y"] and all(k["value_id"] for k in know)
    ids = brain.object_map()
    assert set(ids) == {"x", "y"} and sorted(brain.ids()) == sorted(ids.values())
    old = brain.object_id("x")
    brain["x"] = 4
    assert brain.object_id("x") != old and brain.object_id("missing") is None
    assert brain.object_ids() == brain.object_map()
    assert brain.metadata("x")["name"] == "x" and brain.metadata("missing") is None
    assert set(brain.metadata()) == {"x", "y"} and len(brain.metadata(output="list")) == 2
    with pytest.raises(TypeError):
        brain.metadata("x", output="int")


def test_used_free_size_resize(brain: Brain) -> None:
    assert brain.used() == 0 and brain.free() == brain.size() == 50000000
    brain["arr"] = np.zeros(1_000_000)
    used = brain.used()
    assert used >= 8_000_000 and brain.free() == 50000000 - used
    brain.resize(100000000)
    assert brain.size() == 100000000 and brain.bytes == 100000000 and brain.mb == "100 MB"
    with pytest.raises(InvalidArgumentError, match="holds"):
        brain.resize(used - 1)
    assert brain.size() == 100000000
    brain.resize(used + 100)
    with pytest.raises(StoreFullError):
        brain["more"] = np.zeros(1_000_000)
    assert "more" not in brain


def test_size_is_shared_by_brains_on_one_path(store: Path) -> None:
    Brain(path=str(store), size=70000000)
    other = Brain(path=str(store), start_process=False)
    assert other.size() == 70000000


def test_sleep_wake_up_start_dead(brain: Brain) -> None:
    brain["x"] = 1
    brain.sleep()
    with pytest.raises(BrainAsleepError):
        brain["x"]
    brain.wake_up()
    assert brain["x"] == 1
    brain.dead()  # not sure: nothing happens
    assert brain["x"] == 1
    brain.dead(i_am_sure=True)
    with pytest.raises(BrainAsleepError):
        brain.names()
    brain.start()
    assert brain["x"] == 1  # values outlive the "server"


def test_namespaces(brain: Brain, store: Path) -> None:
    brain["this"] = "that"
    assert brain.set_namespace() == "default"
    assert brain.set_namespace("newspace") == "newspace" and brain.namespace == "newspace"
    brain["that"] = "other"
    brain["this"] = "this"
    assert brain["this"] == "this"
    assert sorted(brain.names(namespace="all")) == ["that", "this", "this"]
    assert brain.namespaces() == {"default", "newspace"}
    brain.set_namespace("default")
    assert brain["this"] == "that"
    with pytest.raises(KeyError):
        brain["that"]
    other = Brain(path=str(store), namespace="newspace", start_process=False)
    assert other["that"] == "other"
    assert brain.remove_namespace("newspace").startswith("Deleted namespace newspace")
    assert brain.namespaces() == {"default"} and "that" not in other
    with pytest.raises(InvalidArgumentError):
        brain.remove_namespace("default")
    brain.set_namespace("somespace")
    brain["that"] = "this"
    brain.remove_namespace()
    assert brain.namespace == "default" and "that" not in brain


def test_another_process_recalls_what_one_learned(store: Path) -> None:
    run_python(f"""
        import pandas as pd
        from allye_data_connector.compat.brain_plasma import Brain
        brain = Brain(path={str(store)!r})
        brain["df"] = pd.DataFrame({{"a": [1, 2]}})
        brain.learn({{"k": "v"}}, "d", description="dict")
    """)
    brain = Brain(path=str(store), start_process=False)
    assert brain["d"] == {"k": "v"} and list(brain["df"]["a"]) == [1, 2]
    assert brain.info("d")["description"] == "dict"


def test_v02_test_script_namespaces(brain: Brain, store: Path) -> None:
    # brain-plasma 0.2's own test script, namespace part: a namespace exists once set,
    # empty or not, and can be removed from any other namespace.
    assert brain.show_namespaces() == {"default"}
    brain["a"] = 5
    assert brain.info("a")["namespace"] == "default"
    brain.set_namespace("newname")
    assert brain.namespace == "newname" and brain.show_namespaces() == {"default", "newname"}
    assert brain.names() == [] and brain.names(namespace="all") != []
    brain["a"] = 6
    assert brain["a"] != 5 and brain.info("a")["namespace"] == "newname"
    brain.forget("a")
    with pytest.raises(KeyError):
        brain["a"]
    brain.set_namespace("default")
    assert brain["a"] == 5
    brain.set_namespace("joyful")
    brain.set_namespace("donuts")
    assert Brain(path=str(store), start_process=False).show_namespaces() == {"default", "newname", "joyful", "donuts"}
    brain.remove_namespace("joyful")
    assert brain.namespace == "donuts"
    brain.remove_namespace("donuts")
    assert brain.namespace == "default"
    brain.remove_namespace("newname")
    assert brain.show_namespaces() == {"default"}
    assert len(brain.names(namespace="all")) == 1
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        brain.remove_namespace("joyful")


def test_a_missing_name_speaks_of_objects_and_namespaces(brain: Brain) -> None:
    from allye_data_connector.errors import ObjectNotFoundError, TableNotFoundError

    brain.set_namespace("space1")
    for call in (lambda: brain.recall("nothing"), lambda: brain["nothing"], lambda: brain.info("nothing")):
        with pytest.raises(ObjectNotFoundError) as info:
            call()
        assert isinstance(info.value, (KeyError, TableNotFoundError))
        msg = str(info.value)
        assert 'no object "nothing" in namespace "space1"' in msg and "namespaces()" in msg
        assert "table" not in msg and "list_tables" not in msg
