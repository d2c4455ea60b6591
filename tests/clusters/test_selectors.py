"""Label selectors: the Kubernetes syntax, matched as the API server matches it."""

import pytest

from clusters.selectors import SelectorError, matches, parse

TEAM_A = {"team": "a", "env": "prod"}
TEAM_B = {"team": "b", "env": "staging", "deprecated": ""}
UNLABELLED: dict = {}


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("team=a", [TEAM_A]),
        ("team==a", [TEAM_A]),
        ("team!=a", [TEAM_B, UNLABELLED]),
        ("team in (a,b)", [TEAM_A, TEAM_B]),
        ("team in (b)", [TEAM_B]),
        ("team notin (a)", [TEAM_B, UNLABELLED]),
        ("team", [TEAM_A, TEAM_B]),
        ("!team", [UNLABELLED]),
        ("!deprecated", [TEAM_A, UNLABELLED]),
        ("deprecated=", [TEAM_B]),
        ("team,env=prod", [TEAM_A]),
        ("team in (a,b),env notin (prod)", [TEAM_B]),
        ("  team  in  ( a , b ) ,  !deprecated ", [TEAM_A]),
        ("team notin(a),env!=staging", [UNLABELLED]),
        ("", [TEAM_A, TEAM_B, UNLABELLED]),
    ],
)
def test_selector_selects_what_kubernetes_would(selector, selected):
    everything = [TEAM_A, TEAM_B, UNLABELLED]
    assert [labels for labels in everything if matches(selector, labels)] == selected


def test_qualified_keys_with_a_dns_prefix_parse():
    selector = parse("kubernetes.io/metadata.name in (web,api),example.com/tier!=db")
    assert selector.matches({"kubernetes.io/metadata.name": "web"})
    assert not selector.matches({"kubernetes.io/metadata.name": "web", "example.com/tier": "db"})


def test_in_with_an_empty_value_in_the_set_selects_an_empty_label():
    assert matches("tier in (,a)", {"tier": ""})
    assert matches("tier in (a,)", {"tier": ""})
    assert not matches("tier in (a,)", {})


def test_parsed_selector_prints_back_in_canonical_form():
    assert str(parse(" team in ( a ,b ), !old ,env==prod,x")) == "team in (a,b),!old,env=prod,x"


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("team=a,", "ends with a comma"),
        (",team", "Expected a label key"),
        ("team in a", "in parentheses"),
        ("team in (a", "closing"),
        ("team in ()", "at least one value"),
        ("team notin (a b)", "with commas"),
        ("team in (a=b)", "Unexpected"),
        ("team a", "expected =, ==, !=, in, notin or a comma"),
        ("team=a b", "Separate requirements with commas"),
        ("=a", "Expected a label key"),
        ("!", "followed by a label key"),
        ("!=a", "Expected a label key"),
        ("team=(a)", "Expected a value"),
        ("team===a", "Expected a value"),
        ("-team=a", "is not a label key"),
        ("Example.com/team=a", "prefix"),
        ("/team=a", "prefix"),
        ("team=" + "v" * 64, "is not a label value"),
        ("team=a@b", "is not a label value"),
        ("replicas>1", "do not compare numbers"),
        ("t" * 64, "is not a label key"),
        ("team=a" + ",team=a" * 1000, "at most"),
    ],
)
def test_malformed_selector_is_refused_with_a_message_saying_what_is_wrong(selector, message):
    with pytest.raises(SelectorError, match=message):
        parse(selector)
