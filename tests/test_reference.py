"""Where a chapter finds the book's reference run: beside it, or, for a package installed from
GitHub (Colab), downloaded from the installed commit. No network: downloads read file:// URLs."""

import importlib.metadata
import io
import json
import urllib.error
import warnings

import pytest

from alexnet_edu import reference
from alexnet_edu.reference import CONV_WEIGHTS, find_reference_run, installed_from_github

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeDistribution:
    def __init__(self, direct_url):
        self.direct_url = direct_url

    def read_text(self, name):
        assert name == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


def installed_as(monkeypatch, direct_url):
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: FakeDistribution(direct_url))


def github_install(url="https://github.com/someone/alexnet-edu"):
    return {"url": url, "vcs_info": {"vcs": "git", "commit_id": COMMIT, "requested_revision": "main"}}


def write_run(folder):
    folder.mkdir(parents=True)
    (folder / "history.json").write_text('{"test_acc": [0.9]}')
    (folder / CONV_WEIGHTS).write_bytes(b"weights")
    return folder


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch):
    monkeypatch.setattr(reference, "_FAILED", set())   # each test is a new Python session


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A stand-in for raw.githubusercontent.com, and an empty cache."""
    monkeypatch.setenv("ALEXNET_EDU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(reference, "RAW_URL", (tmp_path / "raw").as_uri() + "/{repo}/{commit}/book/data/reference/{name}")
    return tmp_path / "raw"


@pytest.mark.parametrize("url", ["https://github.com/someone/alexnet-edu", "https://github.com/someone/alexnet-edu.git"])
def test_a_github_install_names_its_repository_and_commit(monkeypatch, url):
    installed_as(monkeypatch, github_install(url))
    assert installed_from_github() == ("someone/alexnet-edu", COMMIT)


@pytest.mark.parametrize("direct_url", [
    {"url": "file:///home/me/alexnet-edu", "dir_info": {"editable": True}},          # pip install -e .
    {"url": "https://gitlab.com/someone/alexnet-edu", "vcs_info": {"vcs": "git", "commit_id": COMMIT}},
    None,                                                                             # from a wheel or index
])
def test_other_installs_do_not_download(monkeypatch, direct_url, repository, tmp_path):
    installed_as(monkeypatch, direct_url)
    write_run(repository / "someone/alexnet-edu" / COMMIT / "book/data/reference")
    assert installed_from_github() is None
    with pytest.warns(UserWarning, match=r"no reference run shown: .*missing/ is not beside this chapter .*not installed from GitHub"):
        assert find_reference_run(tmp_path / "missing") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # said once per session
        assert find_reference_run(tmp_path / "missing") is None


def test_the_folder_beside_the_chapter_comes_first(monkeypatch, repository, tmp_path):
    installed_as(monkeypatch, github_install())
    local = write_run(tmp_path / "book" / "data" / "reference")
    assert find_reference_run(local) == local
    assert not (tmp_path / "cache").exists()


def test_a_github_install_downloads_the_run_of_its_commit_once(monkeypatch, repository, tmp_path):
    installed_as(monkeypatch, github_install())
    published = write_run(repository / "someone/alexnet-edu" / COMMIT / "book/data/reference")
    found = find_reference_run(tmp_path / "missing")
    assert found == tmp_path / "cache" / "reference" / COMMIT
    assert (found / "history.json").read_text() == '{"test_acc": [0.9]}'
    assert (found / CONV_WEIGHTS).read_bytes() == b"weights"
    assert sorted(p.name for p in found.iterdir()) == sorted(["history.json", CONV_WEIGHTS])   # no .part left
    for f in published.iterdir():
        f.unlink()
    assert find_reference_run(tmp_path / "missing") == found      # from the cache, not downloaded again


def test_no_run_at_that_commit_says_why_and_is_tried_once(monkeypatch, repository, tmp_path):
    installed_as(monkeypatch, github_install())
    calls = []

    def not_found(url, timeout):
        calls.append(url)
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, io.BytesIO())

    monkeypatch.setattr(reference.urllib.request, "urlopen", not_found)
    with pytest.warns(UserWarning, match=r"HTTP 404: someone/alexnet-edu has no reference run at commit .*fork"):
        assert find_reference_run(tmp_path / "missing") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the second chapter in the same session: no retry, no noise
        assert find_reference_run(tmp_path / "missing") is None
    assert len(calls) == 1


def test_a_failed_download_warns_and_gives_none(monkeypatch, repository, tmp_path):
    installed_as(monkeypatch, github_install())          # nothing published: the file:// URL is missing
    with pytest.warns(UserWarning, match="could not download the reference run from file://"):
        assert find_reference_run(tmp_path / "missing") is None
    assert not list((tmp_path / "cache" / "reference" / COMMIT).iterdir())
