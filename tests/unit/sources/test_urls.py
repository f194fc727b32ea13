"""Unit tests (no git needed): URL credentials, masking, cache keys, and ignore-file rules."""
from __future__ import annotations

import pytest

from proj.sources.snapshot import ignored, parse_rules
from proj.sources.urls import cache_key, mask_text, mask_url, normalise, parse_git_url

# (url as typed, credential-free url, username, password)
URLS = [
    ("https://user:tok@github.com/org/repo.git", "https://github.com/org/repo.git", "user", "tok"),
    ("https://ghp_token@github.com/org/repo", "https://github.com/org/repo", "ghp_token", None),
    ("https://us%40er:p%2Fw@host/r.git", "https://host/r.git", "us@er", "p/w"),
    ("https://github.com/org/repo.git", "https://github.com/org/repo.git", None, None),
    ("ssh://git@host:2222/org/repo.git", "ssh://git@host:2222/org/repo.git", None, None),
    ("ssh://git:pw@host/org/repo.git", "ssh://git@host/org/repo.git", None, "pw"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git", None, None),
    ("file:///tmp/repo", "file:///tmp/repo", None, None),
]


@pytest.mark.parametrize("typed,clean,user,password", URLS)
def test_credentials_are_split_from_the_url(typed, clean, user, password) -> None:
    url = parse_git_url(typed)
    assert (url.url, url.username, url.password) == (clean, user, password)


def test_masking_hides_userinfo_and_every_spelling_of_the_secret() -> None:
    url = parse_git_url("https://alice:p%2Fw0rd@host/r.git")
    assert mask_url("fatal: https://alice:p%2Fw0rd@host/r.git not found") == "fatal: https://***@host/r.git not found"
    assert mask_text("auth failed for p/w0rd and p%2Fw0rd", url) == "auth failed for *** and ***"
    assert mask_url("ssh://git:pw@host/x") == "ssh://git:***@host/x"


def test_one_cache_key_per_repository_whatever_the_spelling() -> None:
    same = ["https://GitHub.com/org/repo.git", "https://github.com/org/repo/", "https://github.com/org/repo"]
    assert len({cache_key(u) for u in same}) == 1
    assert cache_key("https://github.com/org/repo") != cache_key("https://github.com/org/repo2")
    assert normalise("git@github.com:org/repo.git") == "ssh://git@github.com/org/repo"
    assert cache_key("https://github.com/org/repo").startswith("github.com-org-repo-")


# (ignore file text, base dir, path, is_dir, ignored?)
RULES = [
    ("*.log", "", "a/b/x.log", False, True),
    ("*.log\n!keep.log", "", "keep.log", False, False),
    ("/data/", "", "data", True, True),
    ("/data/", "", "sub/data", True, False),
    ("data/", "", "data", False, False),
    ("build", "", "x/build", True, True),
    ("docs/*.md", "", "docs/a.md", False, True),
    ("docs/*.md", "", "docs/x/a.md", False, False),
    ("**/cache", "", "a/b/cache", True, True),
    ("a/**/z", "", "a/b/c/z", False, True),
    ("out/**", "", "out/x/y", False, True),
    ("x?.txt", "", "xa.txt", False, True),
    ("[ab].py", "", "c.py", False, False),
    ("*.tmp", "sub", "sub/x.tmp", False, True),
    ("*.tmp", "sub", "other/x.tmp", False, False),
    ("# comment\n\n\\#hash", "", "#hash", False, True),
]


@pytest.mark.parametrize("text,base,path,is_dir,expected", RULES)
def test_gitignore_rules(text, base, path, is_dir, expected) -> None:
    assert ignored(parse_rules(text, base), path, is_dir) is expected
