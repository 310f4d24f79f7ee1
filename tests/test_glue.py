"""glue: myst-nb's glue for the website; where myst-nb is missing (Colab), the value printed by name."""

import pytest

from alexnet_edu import glue as glue_module


def test_without_myst_nb_the_value_is_printed_under_its_name(monkeypatch, capsys):
    monkeypatch.setattr(glue_module, "_myst_nb_glue", None)
    glue_module.glue("lrn_change", -1.47)
    assert capsys.readouterr().out == "lrn_change = -1.47\n"


def test_with_myst_nb_the_value_goes_to_myst_nb_unseen(monkeypatch, capsys):
    stored = []
    monkeypatch.setattr(glue_module, "_myst_nb_glue", lambda name, value, display: stored.append((name, value, display)))
    glue_module.glue("lrn_change", -1.47)
    assert stored == [("lrn_change", -1.47, False)] and capsys.readouterr().out == ""


def test_a_name_the_prose_cannot_refer_to_is_refused():
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        glue_module.glue("lrn change", 1)
